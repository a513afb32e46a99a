"""The Lua side of the scripting runtime (Lua 5.1 source, run once per
interpreter). Redis builds this part in C; here it is Lua over a few Python
primitives (``P``): the ``redis`` table, Redis's ``pcall``, the error handler
that adds the script's source and line, the sandbox (locked globals and
library tables), and the conversion of a script's return value into the RESP
bytes Redis would send (``__frt.encode``).

Stock Lua 5.1 has no read-only tables (Redis patches its Lua for that); the
sandbox gives scripts proxies instead: empty tables whose ``__index`` reads
the real table and whose ``__newindex`` raises Redis's error. ``rawset`` and
``setmetatable`` refuse proxies. Frames of this prelude are skipped by the
error handler, so positions are those Redis reports (where Redis has a C
function, this prelude may have a Lua one).
"""

PRELUDE = r"""
local P = ...
local dbg = debug
local _pcall, _error, _type, _tostring, _rawget, _rawset, _select =
      pcall, error, type, tostring, rawget, rawset, select
local _setmetatable, _getmetatable, _next = setmetatable, getmetatable, next
local sfmt, sgsub, ssub, tconcat = string.format, string.gsub, string.sub, table.concat
local INTERNAL = "=[frtrio]"
local F = {}
__frt = F

-- the error handler (Redis's __redis__err__handler), skipping prelude frames
local unwrap = P.unwrap
function F.errh(err)
  if _type(err) == 'userdata' then err = unwrap(err) end
  local lvl, i = 2, nil
  local seen = 0
  while true do
    local fi = dbg.getinfo(lvl, 'nSl')
    if not fi then break end
    if fi.source ~= INTERNAL then
      seen = seen + 1
      if seen == 1 then
        i = fi
        if fi.what ~= 'C' then break end
      else
        i = fi
        break
      end
    end
    lvl = lvl + 1
  end
  if _type(err) ~= 'table' then
    err = {err='ERR ' .. _tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end

local function err_table(msg)
  -- Redis's luaPushErrorBuff
  local code, m
  if ssub(msg, 1, 1) == '-' then
    local sp = msg:find(' ', 1, true)
    if not sp then code, m = 'ERR', ssub(msg, 2)
    else code, m = ssub(msg, 2, sp - 1), ssub(msg, sp + 1) end
  else
    code, m = 'ERR', msg
  end
  m = m:gsub('^[\r\n]+', ''):gsub('[\r\n]+$', '')
  return {err = code .. ' ' .. m}
end
F.err_table = err_table

local redis = {}
-- redis.call / redis.pcall: Lua functions in front of the Python callables.
-- lupa refuses a call to Python with more than ~7990 arguments (its
-- lua_checkstack counts them against the C stack limit); Redis's C function
-- takes up to Lua's 8000, so many arguments go packed in a table. A script's
-- 'return redis.call(...)' is compiled as a plain call (tailcall.py), so its
-- frame stays for the error handler as under Redis's C redis.call.
local P_call, P_pcall, P_call_packed, P_pcall_packed = P.call, P.pcall, P.call_packed, P.pcall_packed
local MANY = 7000
function redis.call(...)
  local n = _select('#', ...)
  if n < MANY then return P_call(...) end
  return P_call_packed(n, {...})
end
function redis.pcall(...)
  local n = _select('#', ...)
  if n < MANY then return P_pcall(...) end
  return P_pcall_packed(n, {...})
end
function redis.sha1hex(...)
  if _select('#', ...) ~= 1 then _error(err_table('wrong number of arguments')) end
  local s = ...
  if _type(s) == 'number' then s = _tostring(s) end
  if _type(s) ~= 'string' then s = '' end
  return P.sha1hex(s)
end
function redis.error_reply(...)
  local n = _select('#', ...)
  local e = n > 0 and _select(n, ...) or nil
  if n ~= 1 or _type(e) ~= 'string' then return err_table('wrong number or type of arguments') end
  if ssub(e, 1, 1) ~= '-' then e = '-' .. e end
  return err_table(e)
end
function redis.status_reply(...)
  local n = _select('#', ...)
  local s = n > 0 and _select(n, ...) or nil
  if n ~= 1 or _type(s) ~= 'string' then return err_table('wrong number or type of arguments') end
  return {ok = s}
end
function redis.log(...)
  local argc = _select('#', ...)
  if argc < 2 then _error(err_table('redis.log() requires two arguments or more.')) end
  local level = ...
  if not tonumber(level) then _error(err_table('First argument must be a number (log level).')) end
  level = tonumber(level)
  if level < 0 or level > 3 then _error(err_table('Invalid debug level.')) end
  local parts = {}
  for j = 2, argc do
    local v = _select(j, ...)
    local t = _type(v)
    if t == 'string' or t == 'number' then parts[#parts + 1] = _tostring(v) end
  end
  P.log(level - level % 1, tconcat(parts, ' '))
end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REDIS_VERSION_NUM = P.version_num
redis.REDIS_VERSION = P.version
function redis.setresp(...)
  if not P.running() then _error(err_table('redis.setresp can only be called inside a script invocation')) end
  local argc = _select('#', ...)
  if argc ~= 1 then _error(err_table('redis.setresp() requires one argument.')) end
  local r = tonumber((...)) or 0
  r = r - r % 1
  if r ~= 2 and r ~= 3 then _error(err_table('RESP version must be 2 or 3.')) end
  P.setresp(r)
end
function redis.set_repl(...)
  if not P.running() then _error(err_table('redis.set_repl can only be called inside a script invocation')) end
  local argc = _select('#', ...)
  if argc ~= 1 then _error(err_table('redis.set_repl() requires two arguments.')) end
  local f = tonumber((_select(argc, ...))) or 0
  f = f - f % 1
  if f < 0 or f > 3 then _error(err_table('Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.')) end
  P.set_repl(f)
end
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
function redis.replicate_commands() return true end
function redis.breakpoint() return false end
function redis.debug() end
function redis.acl_check_cmd(...)
  local s, v = P.acl_check(...)
  if s ~= 0 then _error(v) end
  return v
end
F.redis = redis

-- Redis's pcall: a table error with a string 'err' field becomes that string
local function pcall_result(ok, ...)
  if ok then return true, ... end
  local e = ...
  if _type(e) == 'userdata' then e = unwrap(e) end
  if _type(e) == 'table' then
    local m = e.err
    local t = _type(m)
    if t == 'string' or t == 'number' then e = m end
  end
  return false, e
end
F.pcall = function(...) return pcall_result(_pcall(...)) end

-- math.random / math.randomseed over Redis's rand48
F.random = function(...)
  local n = _select('#', ...)
  local r = P.rand()
  if n == 0 then return r end
  if n == 1 then
    local u = (...)
    u = tonumber(u) or _error("bad argument #1 to 'random' (number expected, got " .. _type(u) .. ")")
    u = u - u % 1
    if u < 1 then _error("bad argument #1 to 'random' (interval is empty)") end
    return math.floor(r * u) + 1
  end
  if n == 2 then
    local l, u = ...
    l = tonumber(l) or _error("bad argument #1 to 'random' (number expected, got " .. _type(l) .. ")")
    u = tonumber(u) or _error("bad argument #2 to 'random' (number expected, got " .. _type(u) .. ")")
    l, u = l - l % 1, u - u % 1
    if l > u then _error("bad argument #2 to 'random' (interval is empty)") end
    return math.floor(r * (u - l + 1)) + l
  end
  _error("wrong number of arguments")
end
F.randomseed = function(s)
  s = tonumber(s) or _error("bad argument #1 to 'randomseed' (number expected, got " .. _type(s) .. ")")
  P.srand(s - s % 1)
end

-- --- the return value -> RESP bytes (Redis's luaReplyToRedisReply) ---------
local function clean(s) return (sgsub(s, '[\r\n]', ' ')) end
local function fmtdbl(d)
  if d == math.huge then return 'inf' elseif d == -math.huge then return '-inf' end
  return sfmt('%.17g', d)
end

-- ``s`` is the height of the Lua stack Redis's C encoder would have at this
-- value (the error handler and the result at the top: 2); it refuses a value
-- when 4 more slots would pass Lua's C stack limit (lua_checkstack, 8000):
-- an array element sits 1 slot above its table, a map's key 4 and value 3,
-- a set's member 3. So a table that contains itself ends where Redis's does.
local STACK_LIMIT = 8000
local encode
encode = function(v, out, resp3, sresp, errs, s)
  if s + 4 > STACK_LIMIT then
    out[#out + 1] = '-ERR reached lua stack limit\r\n'
    errs[#errs + 1] = 'ERR reached lua stack limit'
    return
  end
  local t = _type(v)
  if t == 'string' then
    out[#out + 1] = '$' .. #v .. '\r\n' .. v .. '\r\n'
  elseif t == 'boolean' then
    if sresp == 2 then
      if v then out[#out + 1] = ':1\r\n' else out[#out + 1] = resp3 and '_\r\n' or '$-1\r\n' end
    else
      if resp3 then out[#out + 1] = v and '#t\r\n' or '#f\r\n'
      else out[#out + 1] = v and ':1\r\n' or ':0\r\n' end
    end
  elseif t == 'number' then
    out[#out + 1] = ':' .. P.lltoa(v) .. '\r\n'
  elseif t == 'table' then
    local e = _rawget(v, 'err')
    if _type(e) == 'string' then
      local msg = e
      local ig = v.ignore_error_stats_update
      -- addReplyErrorFormatEx: trailing newlines trimmed, inner ones spaced
      msg = clean((sgsub(msg, '[\r\n]+$', '')))
      out[#out + 1] = '-' .. msg .. '\r\n'
      -- (an error marked ignore_error_stats_update still fails the command:
      -- afterErrorReply's NO_STATS_UPDATE branch)
      if not (_type(ig) == 'boolean' and ig) then errs[#errs + 1] = msg
      else errs.ignored = (errs.ignored or 0) + 1 end
      return
    end
    local ok = _rawget(v, 'ok')
    if _type(ok) == 'string' then out[#out + 1] = '+' .. clean(ok) .. '\r\n'; return end
    local d = _rawget(v, 'double')
    if _type(d) == 'number' then
      local s = fmtdbl(d)
      if resp3 then out[#out + 1] = ',' .. s .. '\r\n' else out[#out + 1] = '$' .. #s .. '\r\n' .. s .. '\r\n' end
      return
    end
    local bn = _rawget(v, 'big_number')
    if _type(bn) == 'string' then
      bn = clean(bn)
      if resp3 then out[#out + 1] = '(' .. bn .. '\r\n' else out[#out + 1] = '$' .. #bn .. '\r\n' .. bn .. '\r\n' end
      return
    end
    local vs = _rawget(v, 'verbatim_string')
    if _type(vs) == 'table' then
      local f = _rawget(vs, 'format')
      local s = _rawget(vs, 'string')
      if _type(f) == 'string' and _type(s) == 'string' then
        if resp3 then
          local ext = ssub(f .. '   ', 1, 3)
          local z = f:find('\0', 1, true)
          if z and z <= 3 then ext = ssub(ssub(f, 1, z - 1) .. '   ', 1, 3) end
          out[#out + 1] = '=' .. (#s + 4) .. '\r\n' .. ext .. ':' .. s .. '\r\n'
        else
          out[#out + 1] = '$' .. #s .. '\r\n' .. s .. '\r\n'
        end
        return
      end
    end
    local m = _rawget(v, 'map')
    if _type(m) == 'table' then
      local hdr = #out + 1
      out[hdr] = ''
      local n = 0
      local k, x = _next(m)
      while k ~= nil do
        encode(k, out, resp3, sresp, errs, s + 4)
        encode(x, out, resp3, sresp, errs, s + 3)
        n = n + 1
        k, x = _next(m, k)
      end
      out[hdr] = resp3 and ('%' .. n .. '\r\n') or ('*' .. (2 * n) .. '\r\n')
      return
    end
    local st = _rawget(v, 'set')
    if _type(st) == 'table' then
      local hdr = #out + 1
      out[hdr] = ''
      local n = 0
      local k = _next(st)
      while k ~= nil do
        encode(k, out, resp3, sresp, errs, s + 3)
        n = n + 1
        k = _next(st, k)
      end
      out[hdr] = (resp3 and '~' or '*') .. n .. '\r\n'
      return
    end
    local hdr = #out + 1
    out[hdr] = ''
    local j = 1
    while true do
      local x = _rawget(v, j)
      if x == nil then break end
      encode(x, out, resp3, sresp, errs, s + 1)
      j = j + 1
    end
    out[hdr] = '*' .. (j - 1) .. '\r\n'
  else
    out[#out + 1] = resp3 and '_\r\n' or '$-1\r\n'
  end
end

function F.encode(v, resp3, sresp)
  local out, errs = {}, {}
  encode(v, out, resp3, sresp, errs, 2)
  return tconcat(out), errs
end

-- the message of a failed run (Redis's luaExtractErrorInformation)
function F.errinfo(e)
  local msg, source, line, ig
  local t = _type(e)
  if t == 'string' or t == 'number' then
    msg = 'ERR ' .. _tostring(e)
  end
  if t == 'table' then
    local m = e.err
    if _type(m) == 'string' or _type(m) == 'number' then msg = _tostring(m) end
    local s = e.source
    if _type(s) == 'string' or _type(s) == 'number' then source = _tostring(s) end
    local l = e.line
    if _type(l) == 'string' or _type(l) == 'number' then line = _tostring(l) end
    local i = e.ignore_error_stats_update
    if _type(i) == 'boolean' then ig = i end
  end
  return msg, source, line, ig or false
end

-- run a compiled script / function under the error handler
local _collect = collectgarbage
local function run_result(ok, ...)
  if ok then return true, (...) end
  -- a string is an error the handler never saw: Lua's 'not enough memory'
  -- (the heap limit, Vm.HEAP_LIMIT); free the garbage before going on
  if _type((...)) == 'string' then _collect('collect') end
  return false, (...)
end
local _xpcall = xpcall
function F.run_load(f)
  local ok, e = _pcall(f)
  if not ok and _type(e) == 'userdata' then e = unwrap(e) end
  return ok, e
end

-- the count hook (Redis's luaMaskCountHook)
local hook_py = P.hook
local still_killed = P.still_killed
local function killed()
  -- from now on every line raises again, so pcall cannot swallow the kill
  dbg.sethook(function()
    local i = dbg.getinfo(2, 'S')
    if i and i.source ~= INTERNAL and still_killed() then
      _error(err_table('Script killed by user with SCRIPT KILL...'))
    end
  end, 'l')
  _error(err_table('Script killed by user with SCRIPT KILL...'))
end
local function hook()
  if hook_py() then killed() end
end
function F.sethook(on)
  if on then dbg.sethook(hook, '', 100000) else dbg.sethook() end
end
F.killed_error = function() killed() end

-- one crossing from Python per script run (each costs): set KEYS/ARGV (EVAL)
-- or pass them (FCALL), the count hook on, the call under the error
-- handler, the hook off, the reply encoded. Returns true, bytes, ignored
-- error count, error count, error table; or false, the error value.
local RG = _G
function F.exec(eval_mode, f, keys, argv, hook_on, resp3, get_sresp)
  if hook_on then dbg.sethook(hook, '', 100000) end
  local ok, v
  if eval_mode then
    _rawset(RG, 'KEYS', keys)
    _rawset(RG, 'ARGV', argv)
    ok, v = run_result(_xpcall(f, F.errh))
  else
    ok, v = run_result(_xpcall(function() return f(keys, argv) end, F.errh))
  end
  if hook_on then dbg.sethook() end
  if not ok then return false, v end
  -- (the protocol redis.setresp chose, read after the run)
  local data, errs = F.encode(v, resp3, get_sresp())
  return true, data, errs.ignored or 0, #errs, errs
end

-- FUNCTION LOAD's time limit (Redis's luaEngineLoadHook: 500 ms)
local load_expired = P.load_expired
function F.set_load_hook(on)
  if on then
    dbg.sethook(function()
      if load_expired() then _error(err_table('FUNCTION LOAD timeout')) end
    end, '', 100000)
  else
    dbg.sethook()
  end
end

-- luaL_where(L, 1) as seen from a Python callable (a C function to Lua):
-- level 1 is this function, 2 the callable, 3 its caller
function F.where()
  local i = dbg.getinfo(3, 'Sl')
  if i and i.currentline > 0 then return i.short_src .. ':' .. i.currentline .. ': ' end
  return ''
end

-- --- sandbox ----------------------------------------------------------------
local proxies = _setmetatable({}, {__mode = 'k'})
local metas = _setmetatable({}, {__mode = 'k'})
local function ro_error() _error('Attempt to modify a readonly table', 3) end

local function make_proxy(real, strict_globals, seen)
  if seen[real] then return seen[real] end
  local p = {}
  seen[real] = p
  for k, v in _next, real do
    if _type(v) == 'table' and v ~= real then
      real[k] = make_proxy(v, false, seen)
    end
  end
  local mt = {}
  if strict_globals then
    mt.__index = function(_, k)
      local v = real[k]
      if v == nil then
        _error("Script attempted to access nonexistent global variable '" .. _tostring(k) .. "'", 2)
      end
      return v
    end
  else
    mt.__index = real
  end
  mt.__newindex = function() ro_error() end
  mt.__metatable = false
  _setmetatable(p, mt)
  proxies[p] = real
  -- what getmetatable() shows of a protected table: a read-only view
  local mview = _setmetatable({}, {__index = mt, __newindex = function() ro_error() end,
                                   __metatable = false})
  proxies[mview] = mt
  metas[p] = mview
  return p
end

function F.sandbox(G, extra)
  -- G: the real globals of scripts; returns the proxy to use as their env
  local seen = {}
  G._G = nil
  local p = make_proxy(G, true, seen)
  G._G = p
  local sm = _getmetatable('')
  if sm and G.string then sm.__index = G.string end
  return p
end

F.rawset = function(t, k, v)
  if proxies[t] then _error('Attempt to modify a readonly table', 0) end
  return _rawset(t, k, v)
end
F.setmetatable = function(t, mt)
  if proxies[t] then _error('Attempt to modify a readonly table', 0) end
  return _setmetatable(t, mt)
end
F.getmetatable = function(t)
  if proxies[t] then return metas[t] end
  return _getmetatable(t)
end
F.is_proxy = function(t) return proxies[t] ~= nil end

-- pairs/next/ipairs over a proxy iterate the real table
local _ipairs, _pairs, _unpack = ipairs, pairs, unpack
F.next = function(t, k)
  local r = proxies[t]
  if r then return _next(r, k) end
  return _next(t, k)
end
F.pairs = function(t)
  local r = proxies[t]
  if r then return _next, r, nil end
  return _pairs(t)
end
F.rawget = function(t, k)
  local r = proxies[t]
  if r then return _rawget(r, k) end
  return _rawget(t, k)
end
F.rawlen = function(t) return #t end
local _loadstring, _setfenv = loadstring, setfenv
F.loadstring = function(s, name)
  if _type(s) == 'string' and ssub(s, 1, 1) == '\27' then
    return nil, 'attempt to load binary chunk'
  end
  local f, e = _loadstring(s, name)
  if f and F.env then _setfenv(f, F.env) end
  return f, e
end
F.compile = function(src, name, env)
  local f, e = _loadstring(src, name)
  if f then _setfenv(f, env) end
  return f or false, e or false
end
-- tailcall.py's rewrite of a compiled chunk
local _dump = string.dump
F.dump = function(f) return _dump(f) end
F.undump = function(b, env)
  local f = _loadstring(b, '=binary')
  if f then _setfenv(f, env) end
  return f or false
end
"""

# FUNCTION libraries: the environment their code runs in. While a library
# loads, 'redis' is the library API (register_function, log...); when its
# functions run, 'redis' is the full API (Redis swaps its globals' __index).
FUNCTION_PRELUDE = r"""
local P, G, redis_full = ...
local _type, _error, _next = type, error, next
local loading = false
local lib_api = {}
lib_api.register_function = P.register
lib_api.log = redis_full.log
for _, k in ipairs({'LOG_DEBUG', 'LOG_VERBOSE', 'LOG_NOTICE', 'LOG_WARNING',
                    'REDIS_VERSION', 'REDIS_VERSION_NUM'}) do lib_api[k] = redis_full[k] end
local lib_proxy = setmetatable({}, {__index = function(_, k)
    local v = lib_api[k]
    if v == nil then
      _error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = function() _error('Attempt to modify a readonly table', 2) end, __metatable = false})
local env = setmetatable({}, {
  __index = function(_, k)
    if loading then
      -- while a library loads its globals are only the library API
      if k == 'redis' then return lib_proxy end
      _error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return G[k]
  end,
  __newindex = function(_, k)
    _error("Attempt to modify a readonly table", 2)
  end,
  __metatable = false})
local M = {}
function M.set_loading(b) loading = b end
M.env = env
return M
"""

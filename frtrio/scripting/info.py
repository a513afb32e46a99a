"""INFO memory's scripting fields (Redis 7.0 order and names)."""

from __future__ import annotations


def _human(n: int) -> str:
    from frtrio.commands.info import _human as h

    return h(n)


def memory_lines(srv) -> list[str]:
    s = getattr(srv, "scripting", None)
    vm = fvm = 0
    nscripts = nfuncs = nlibs = 0
    scripts_mem = funcs_mem = 0
    if s is not None:
        vm = s.lua_memory()
        fvm = s.functions_memory()
        nscripts = len(s.scripts)
        nfuncs = len(s.functions)
        nlibs = len(s.libraries)
        scripts_mem = sum(40 + len(x.body) for x in s.scripts.values())
        funcs_mem = sum(len(lib.code) for lib in s.libraries.values())
    total = vm + fvm
    return [
        "used_memory_lua:%d" % vm,
        "used_memory_vm_eval:%d" % vm,
        "used_memory_lua_human:" + _human(vm),
        "used_memory_scripts_eval:%d" % scripts_mem,
        "number_of_cached_scripts:%d" % nscripts,
        "number_of_functions:%d" % nfuncs,
        "number_of_libraries:%d" % nlibs,
        "used_memory_vm_functions:%d" % fvm,
        "used_memory_vm_total:%d" % total,
        "used_memory_vm_total_human:" + _human(total),
        "used_memory_functions:%d" % funcs_mem,
        "used_memory_scripts:%d" % (scripts_mem + funcs_mem),
        "used_memory_scripts_human:" + _human(scripts_mem + funcs_mem),
    ]

"""Lua scripting (EVAL, FUNCTION) on Lua 5.1 via lupa: the interpreter and
Redis's additions (engine.py, prelude.py), the libraries Redis loads
(libs.py) and the suspendable runner behind BUSY / SCRIPT KILL (runner.py)."""

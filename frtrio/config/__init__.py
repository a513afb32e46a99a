"""Server configuration (pure), one module a job:

* ``params``: the parameter table (types, flags, defaults, bounds, checks);
* ``text``: how values are spelled as bytes and quoted (sdscatrepr);
* ``values``: the ``Config`` store, validation and CONFIG GET matching;
* ``loader``: redis.conf loading (``load_config_text``, ``Host``);
* ``rewrite``: CONFIG REWRITE's new file text.

C-number parsing is :mod:`frtrio.core.cnum`. The names below are the package's
public face; import them from here.
"""

from frtrio.config.loader import FatalConfig, Host, LoadAbort, Loader, load_config_text
from frtrio.config.params import (
    IMM, MULTI, PROT, SHELL, VERSION, ConfigError, Param, canonical,
)
from frtrio.config.rewrite import rewrite_config_text
from frtrio.config.text import repr_bytes, to_bytes
from frtrio.config.values import Config

__all__ = [
    "IMM", "MULTI", "PROT", "VERSION", "Config", "ConfigError", "FatalConfig", "Host",
    "LoadAbort", "Loader", "Param", "canonical", "load_config_text", "repr_bytes",
    "rewrite_config_text", "to_bytes",
]

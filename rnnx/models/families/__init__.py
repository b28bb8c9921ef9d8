"""The families rnnx imports, one folder each; importing this package registers them all."""
from . import gated_deltanet  # noqa: F401
from . import mamba2  # noqa: F401
from . import gla  # noqa: F401
from . import hgrn2  # noqa: F401
from . import delta_net  # noqa: F401
from . import retnet  # noqa: F401
from . import rnnx  # noqa: F401

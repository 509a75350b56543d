"""brian2_ext package."""
from .attach import EpropAttachment, IncompatibleModelError, attach_eprop  # noqa: F401  (add e-prop to a user's Brian2 model)

"""brian2_ext package."""
from .attach import EpropAttachment, IncompatibleModelError, attach_eprop, schedule_like_eprop  # noqa: F401  (add e-prop to a Brian2 model)

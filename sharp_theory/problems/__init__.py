"""Problem constructors: one per model family, each returning a :class:`Problem` pytree."""
from .base import Problem, from_loss
from .scale_invariant import lora, nop_toy, op_toy, outer_product, scalar_product

__all__ = ["Problem", "from_loss", "op_toy", "nop_toy", "scalar_product", "outer_product", "lora"]
from .matrix_sensing import matrix_sensing  # noqa: E402
__all__ += ["matrix_sensing"]
from .diagonal_linear import diagonal_linear  # noqa: E402
__all__ += ["diagonal_linear"]
from .matrix_sensing import measurements_of as matrix_sensing_measurements  # noqa: E402
__all__ += ["matrix_sensing_measurements"]
from .conv_relu import conv_relu_signal_noise  # noqa: E402
__all__ += ["conv_relu_signal_noise"]

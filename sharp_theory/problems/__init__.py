"""Problem constructors: one per model family, each returning a :class:`Problem` pytree."""
from .base import Problem, from_loss
from .scale_invariant import lora, nop_toy, op_toy, outer_product, scalar_product

__all__ = ["Problem", "from_loss", "op_toy", "nop_toy", "scalar_product", "outer_product", "lora"]
from .low_rank import matrix_sensing  # noqa: E402
__all__ += ["matrix_sensing"]
from .diagonal import diagonal_linear  # noqa: E402
__all__ += ["diagonal_linear"]
from .low_rank import measurements_of as matrix_sensing_measurements  # noqa: E402
__all__ += ["matrix_sensing_measurements"]
from .conv_relu import conv_relu_signal_noise  # noqa: E402
__all__ += ["conv_relu_signal_noise"]
from .next_token import softmax_bigram  # noqa: E402
__all__ += ["softmax_bigram"]
from .models import from_model  # noqa: E402
__all__ += ["from_model"]
from .feature_mixture import robust_features  # noqa: E402  (issue 27: robust/non-robust features)
__all__ += ["robust_features"]
from .tasks import (FineTuningTasks, bigram_fine_tuning, diagonal_fine_tuning,  # noqa: E402
                    least_squares_task, low_rank_fine_tuning, sequential_regression)
__all__ += ["least_squares_task", "sequential_regression", "bigram_fine_tuning",
            "diagonal_fine_tuning", "low_rank_fine_tuning", "FineTuningTasks"]

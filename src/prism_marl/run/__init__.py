"""One training run, in three parts.

The loop (``trainer.py``), the run directory it writes (``store.py``) and the evaluations it
logs (``evaluator.py``); ``phase.py`` builds what a run trains, and SePS's second phase from
its first.
"""

from prism_marl.run.evaluator import Evaluator, final_statistics
from prism_marl.run.phase import Phase, Plan, build_algorithm, prepare_strategy, seed_keys
from prism_marl.run.store import (
    CONFIG_FILE,
    CURVE_FILE,
    MARL_EVAL_FILE,
    MASKS_FILE,
    METRICS_FILE,
    PREPARATION_FILE,
    SUMMARY_FILE,
    RunStore,
)
from prism_marl.run.trainer import Trainer, non_finite_losses, resume, train

__all__ = [
    "CONFIG_FILE",
    "CURVE_FILE",
    "MARL_EVAL_FILE",
    "MASKS_FILE",
    "METRICS_FILE",
    "PREPARATION_FILE",
    "SUMMARY_FILE",
    "Evaluator",
    "Phase",
    "Plan",
    "RunStore",
    "Trainer",
    "build_algorithm",
    "final_statistics",
    "non_finite_losses",
    "prepare_strategy",
    "resume",
    "seed_keys",
    "train",
]

"""Studies: whole experiments built from the layers below (problems and optimizers, the
runner, the measures), which labs then present.

- :mod:`.phase_diagram`: the conv-ReLU (dimension × signal) phase-diagram grid, chunked,
  resumable and sharded over devices (Chen et al. 2023).
- :mod:`.convergence`: the average squared gradient norm over a horizon and its rate exponent
  (Andriushchenko & Flammarion 2022, Sec. 5).
- :mod:`.diagonal_nets`: our optimizers set up to run the authors' diagonal-net updates.

Layering: studies import problems, optim, dynamics and measure; nothing below imports studies.
"""
from . import convergence, diagonal_nets, phase_diagram, sam_family_more

__all__ = ["convergence", "diagonal_nets", "phase_diagram", "sam_family_more"]

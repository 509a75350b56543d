"""Train the sine-wave task for five iterations with the NumPy reference and compare with NEST's losses."""

from eprop_plugins import reference, tasks
from eprop_plugins.reference_numbers import SINE_ORIGINAL_NEST

scenario = tasks.sine(family="original", iterations=5)  # NEST's test set-up, seed 1
result = reference.run(scenario, on_iteration=lambda i, loss: print(f"iteration {i + 1}: loss {loss:.9f}"))

for ours, nest in zip(result.losses, SINE_ORIGINAL_NEST):
    print(f"reference {ours:.12f}   NEST 3.10 {nest:.12f}   relative difference {abs(ours / nest - 1):.1e}")

"""The contracts core: what every other package depends on, and which depends on nothing of the project.

``interfaces`` (Problem, Verdict and its Outcome, SamplingParams, the verifier / PRM / task / engine protocols),
``registry`` (named components and ``module:attr`` strings), ``scores`` (score ranges), ``metrics`` (pass@k, maj@k,
confidence intervals), ``configio`` (structured-config loading, recipes and their inheritance). Standard library,
numpy and omegaconf only: no torch models, engines, trainer or config schemas.
"""

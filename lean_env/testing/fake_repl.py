"""FAKE Lean REPL -- not Lean. A rule-based stand-in speaking the REPL's exact stdin/stdout protocol.

It exists to test the process pool (timeouts, crashes, garbage, restarts, recycling) where no Lean toolchain
can run. Requests are JSON objects followed by a blank line; responses are pretty-printed JSON followed by a
blank line, with the REPL's field names. Rules, applied to the command text:

- no ``env``: a new environment (``FAKE_BAD_IMPORT`` in it -> an "unknown module" error); unknown ``env`` ->
  ``{"message": "Unknown environment."}``
- ``FAKE_CRASH`` exits; ``FAKE_SLEEP`` hangs; ``FAKE_GARBAGE`` answers non-JSON; ``FAKE_FLOOD`` prints without
  end; ``FAKE_SLOW:<s>`` waits s seconds first; ``FAKE_ALLOC:<mb>`` allocates and keeps mb megabytes;
  ``FAKE_CHILD`` starts a ``sleep`` child, reports its pid in an info message and hangs
- ``FAKE_ENV`` -> an info message listing the names of the process's environment variables
- ``FAKE_ERROR`` -> an error message; ``FAKE_HEARTBEAT`` -> a deterministic-timeout error
- the word ``sorry`` outside ``--`` comments -> a ``sorries`` entry (with a proof state) and the
  "declaration uses `sorry`" warning (single quotes with ``FAKE_OLD_LEAN``)
- ``#print axioms N`` -> "'N' depends on axioms: [...]": propext/Classical.choice/Quot.sound with
  ``FAKE_CLASSICAL``, ``sorryAx`` after a sorry, and every ``FAKE_AXIOM:<name>``
- tactic mode on a sorry's proof state: ``constructor`` splits a goal at its first ``∧``; ``FAKE_FAIL`` ->
  ``Lean error``; ``sorry`` closes a goal but leaves "Incomplete: contains sorry"; anything else closes the first goal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

_BLOAT: list[bytes] = []


def _pos(line: int, col: int = 0) -> dict[str, int]:
    return {"line": line, "column": col}


def _code_lines(cmd: str) -> list[str]:
    return [line.split("--", 1)[0] for line in cmd.split("\n")]


class FakeRepl:
    """The fake's state: environments and proof states."""

    def __init__(self) -> None:
        self.envs = 0
        self.proof_states: dict[int, tuple[list[str], bool]] = {}  # id -> (goals, used sorry)

    def new_state(self, goals: list[str], used_sorry: bool = False) -> int:
        ident = len(self.proof_states)
        self.proof_states[ident] = (goals, used_sorry)
        return ident

    def respond(self, request: dict) -> dict:
        if "tactic" in request:
            return self.tactic(request)
        cmd = str(request.get("cmd", ""))
        if "env" in request and not (isinstance(request["env"], int) and 0 <= request["env"] < self.envs):
            return {"message": "Unknown environment."}
        if "FAKE_CRASH" in cmd:
            sys.exit(3)
        if "FAKE_SLEEP" in cmd:
            time.sleep(3600)
        slow = re.search(r"FAKE_SLOW:([0-9.]+)", cmd)
        if slow:
            time.sleep(float(slow.group(1)))
        alloc = re.search(r"FAKE_ALLOC:([0-9]+)", cmd)
        if alloc:
            _BLOAT.append(bytearray(int(alloc.group(1)) << 20))
        messages: list[dict] = []
        if "FAKE_ENV" in cmd:
            messages.append(self.msg("info", "env: " + " ".join(sorted(os.environ)), 1))
        if "FAKE_CHILD" in cmd:
            child = subprocess.Popen(["sleep", "300"])
            print(json.dumps({"env": 0, "messages": [self.msg("info", f"child {child.pid}", 1)]}) + "\n", flush=True)
            time.sleep(3600)
        sorries: list[dict] = []
        lines = _code_lines(cmd)
        for n, line in enumerate(lines, start=1):
            if "FAKE_BAD_IMPORT" in line:
                messages.append(self.msg("error", "unknown module prefix 'FAKE_BAD_IMPORT'", n))
            if "FAKE_ERROR" in line:
                messages.append(self.msg("error", "unknown tactic (fake)", n, line.index("FAKE_ERROR")))
            if "FAKE_HEARTBEAT" in line:
                messages.append(self.msg(
                    "error", "(deterministic) timeout at `whnf`, maximum number of heartbeats (400000) has been reached", n
                ))
            for match in re.finditer(r"\bsorry\b", line):
                goal = self.goal_of(cmd)
                sorries.append({"pos": _pos(n, match.start()), "endPos": _pos(n, match.end()), "goal": goal,
                                "proofState": self.new_state([goal])})
        if sorries:
            quote = "'sorry'" if "FAKE_OLD_LEAN" in cmd else "`sorry`"
            messages.append(self.msg("warning", f"declaration uses {quote}", 1, 8))
        for n, line in enumerate(lines, start=1):
            probe = re.match(r"\s*#print axioms (?:_root_\.)?(\S+)", line)
            if probe:
                axioms = ["propext", "Classical.choice", "Quot.sound"] if "FAKE_CLASSICAL" in cmd else []
                axioms += ["sorryAx"] if sorries else []
                axioms += re.findall(r"FAKE_AXIOM:(\w+)", cmd)
                text = (f"'{probe.group(1)}' depends on axioms: [{', '.join(axioms)}]" if axioms
                        else f"'{probe.group(1)}' does not depend on any axioms")
                messages.append(self.msg("info", text, n))
        if "env" not in request:
            self.envs += 1
            out: dict = {"env": self.envs - 1}
        else:
            out = {"env": self.envs}
            self.envs += 1
        if messages:
            out["messages"] = messages
        if sorries:
            out["sorries"] = sorries
        return out

    @staticmethod
    def msg(severity: str, data: str, line: int, col: int = 0) -> dict:
        return {"severity": severity, "pos": _pos(line, col), "endPos": _pos(line, col + 1), "data": data}

    @staticmethod
    def goal_of(cmd: str) -> str:
        match = re.search(r"theorem\s+\S+(.*?):=", cmd, re.DOTALL)
        target = match.group(1).rsplit(" : ", 1)[-1].strip() if match else "True"
        return f"⊢ {target}"

    def tactic(self, request: dict) -> dict:
        state = request.get("proofState")
        if state not in self.proof_states:
            return {"message": "Unknown proof state."}
        goals, used_sorry = self.proof_states[state]
        tac = str(request["tactic"]).strip()
        if not goals:
            return {"message": "Lean error:\nno goals to be proved"}
        if "FAKE_FAIL" in tac:
            return {"message": f"Lean error:\n<input>:1:0: unknown tactic {tac!r} (fake)"}
        first, rest = goals[0], goals[1:]
        if tac == "constructor":
            if "∧" not in first:
                return {"message": "Lean error:\nconstructor failed (fake)"}
            left, right = first[2:].split("∧", 1)
            goals = [f"⊢ {left.strip()}", f"⊢ {right.strip()}", *rest]
        else:
            goals = rest
            used_sorry = used_sorry or tac == "sorry"
        new = self.new_state(goals, used_sorry)
        status = ("Incomplete: contains sorry" if used_sorry else "Completed") if not goals else \
            "Incomplete: open goals remain"
        return {"proofState": new, "goals": goals, "proofStatus": status}


def main() -> None:
    repl = FakeRepl()
    buffer: list[str] = []
    for line in sys.stdin:
        if line.strip():
            if not buffer and line.lstrip().startswith(("#", "--")):
                continue
            buffer.append(line)
            continue
        if not buffer:
            continue
        text, buffer = "".join(buffer), []
        request = json.loads(text)  # like the real REPL, unparsable input ends the process
        if "FAKE_GARBAGE" in str(request.get("cmd", "")):
            sys.stdout.write("this is not json {\n\n")
        elif "FAKE_FLOOD" in str(request.get("cmd", "")):
            while True:
                sys.stdout.write("x" * 65536)
        else:
            sys.stdout.write(json.dumps(repl.respond(request), indent=2, ensure_ascii=False) + "\n\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

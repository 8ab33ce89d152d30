"""Actors for the checkpoint-wiring tests: slow stages (``work`` loop iterations per message, so
messages are still queued when the checkpoint is taken) joined by connect() and by ports."""

import ringkernel as rk
from ringkernel import i32


@rk.message
class Job:
    sender: i32
    n: i32
    work: i32


@rk.message
class Done:
    sender: i32
    n: i32
    count: i32


@rk.actor
class Stage:
    """Works on each job, then passes it on (its replies go where connect() sends them)."""

    passed: i32 = 0
    spun: i32 = 0

    def job(self, msg: Job) -> Job:
        i = 0
        spin = 0
        while i < msg.work:
            spin += i
            i += 1
        self.passed += 1
        self.spun = spin  # (kept, so the loop is not optimised away)
        return Job(sender=msg.sender, n=msg.n, work=msg.work)


@rk.actor
class PortStage:
    """Works on each job, then sends it through its port."""

    out: rk.Port[Job]
    passed: i32 = 0
    spun: i32 = 0

    def job(self, msg: Job) -> None:
        i = 0
        spin = 0
        while i < msg.work:
            spin += i
            i += 1
        self.passed += 1
        self.spun = spin  # (kept, so the loop is not optimised away)
        self.out.send(Job(sender=msg.sender, n=msg.n, work=msg.work))


@rk.actor
class Sink:
    """Counts the jobs that reach it and answers each with the count."""

    count: i32 = 0

    def job(self, msg: Job) -> Done:
        self.count += 1
        return Done(sender=msg.sender, n=msg.n, count=self.count)

"""A persistent accumulator actor, and a three-stage actor pipeline (K2K)."""

import ringkernel as rk
from ringkernel import f32, u32


@rk.message
class Add:
    value: f32


@rk.message
class Total:
    total: f32
    count: u32


@rk.actor
class Accumulator:
    total: f32 = 0.0
    count: u32 = 0

    def add(self, msg: Add) -> Total:
        self.total += msg.value
        self.count += 1
        return Total(total=self.total, count=self.count)


@rk.actor
class Scale:
    factor: f32 = 10.0

    def scale(self, msg: Add) -> Add:
        return Add(value=msg.value * self.factor)


def main() -> None:
    print(len(Accumulator.compile("ptx")), "bytes of PTX for the persistent loop")
    with rk.ActorSystem(backend="cpu") as system:
        acc = system.spawn(Accumulator, queue_capacity=1024)
        for i in range(5):
            acc.send(Add(value=float(i)))
        for _ in range(5):
            reply = acc.receive(timeout=1.0)
            print(reply, "hlc", reply.envelope.hlc)
        print("state:", acc.state)

        first = system.spawn(Scale, queue_capacity=64)
        second = system.spawn(Scale, queue_capacity=64)
        total = system.spawn(Accumulator, queue_capacity=64)
        system.connect(first, second)
        system.connect(second, total)
        for i in range(10):
            first.send(Add(value=float(i)))
    # leaving the block drained the pipeline; its replies are still here
    print("pipeline:", [total.receive(timeout=0).total for _ in range(10)][-1])  # 4500.0


if __name__ == "__main__":
    main()

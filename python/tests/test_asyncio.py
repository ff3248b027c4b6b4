"""The level-triggered descriptors in asyncio: await arecv()/areceive()/asend() on one
loop, beside other work, every message checked."""
import asyncio
import random

import shmkit
from conftest import check_msg, finish, make_msg, run_peer, scale


def test_arecv_from_c_producer(peer, name):
    count = scale(2000)

    async def main():
        ticks = 0
        done = asyncio.Event()

        async def ticker():
            # Runs while arecv() waits: the loop is never blocked by a receive.
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        t = asyncio.ensure_future(ticker())
        with shmkit.Channel(name, "consumer", 16384, create=True) as ch:
            p = run_peer(peer, "chan-send", name, count, 9)
            for i in range(count):
                check_msg(await asyncio.wait_for(ch.arecv(), 30), i)
            assert await asyncio.wait_for(ch.arecv(), 30) == b""
            buf = bytearray(16)
            assert await ch.arecv_into(buf) == 0  # end-of-stream stays
        done.set()
        await t
        assert finish(p)[0] == 0
        return ticks

    assert asyncio.run(main()) > 0


def test_asend_to_c_consumer(peer, name):
    count = scale(2000)
    rng = random.Random(4)

    async def main():
        with shmkit.Channel(name, "producer", 8192, create=True) as ch:
            p = run_peer(peer, "chan-recv", name, count)
            for i in range(count):
                # The ring holds a few messages: asend() waits on the descriptor.
                await asyncio.wait_for(ch.asend(make_msg(i, rng)), 30)
        return finish(p)

    rc, out, err = asyncio.run(main())
    assert rc == 0, err
    assert out.strip() == "peer: ok %d" % count


def test_areceive_topic(peer, name):
    count = scale(500)

    async def main():
        with shmkit.Topic(name, "subscriber", create=True, reliable=True) as sub:
            p = run_peer(peer, "topic-pub", name, count, 2)
            for i in range(count):
                check_msg(await asyncio.wait_for(sub.areceive(), 30), i)
            assert await asyncio.wait_for(sub.areceive(), 30) == b""
        return finish(p)

    assert asyncio.run(main())[0] == 0

from corenet.https import Client
from conftest import SMALL


def test_get_small(env, run):
    async def main():
        async with Client(verify=env.ca) as c:
            r = await c.get(env.base + "/small.txt")
            r2 = await c.get(env.base + "/small.txt")
            return r, r2, c.pool.connections_opened

    r, r2, opened = run(main())
    assert r.status_code == 200
    assert r.content == SMALL
    assert r2.content == SMALL
    assert opened == 1

"""The smallest UDP echo server in Python (a DatagramProtocol) on corenet's loop or uvloop's,
for the daemon benchmark's wake-up floor; see udp_echo.c.
Usage: python udp_echo.py PORT [corenet|uvloop]"""
import asyncio
import sys


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


if (sys.argv[2:] or ["corenet"])[0] == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
else:
    import corenet
    loop = corenet.new_event_loop()
loop.run_until_complete(loop.create_datagram_endpoint(
    Echo, local_addr=("127.0.0.1", int(sys.argv[1]))))
print("ready", flush=True)
loop.run_forever()

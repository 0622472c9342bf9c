"""The coverage run's monitor (cocotb_tests/coverage_monitor.py): the key each exchange is
counted under, from the request's command byte and the response's status and NACK code."""

from xbarflow.cocotb_tests.coverage_monitor import RecordingTransport, exchange_key
from xbarflow.hdl import protocol
from xbarflow.hdl.protocol import Cmd, Error, Status


def test_exchange_keys():
    req = protocol.encode_request(Cmd.READ_REG, 3, b"")
    assert exchange_key(req, protocol.encode_response(Status.ACK, b"\0\0\0\1")) == "READ_REG ACK"
    busy = protocol.encode_response(Status.NACK, bytes([Error.BUSY]))
    assert exchange_key(protocol.encode_request(Cmd.START, 0, b""), busy) == "START NACK BUSY"
    unknown = bytes([protocol.SYNC, 0x7E, 0, 0, 0, 0])
    bad_cmd = protocol.encode_response(Status.NACK, bytes([Error.BAD_CMD]))
    assert exchange_key(unknown, bad_cmd) == "UNKNOWN NACK BAD_CMD"
    odd = protocol.encode_response(Status.NACK, bytes([0x42]))
    assert exchange_key(req, odd) == "READ_REG NACK 0x42"


def test_recording_transport_counts_and_delegates():
    class Link:
        master = "the SPI master"

        async def exchange(self, request):
            return protocol.encode_response(Status.ACK, b"")

    counts = {}
    link = RecordingTransport(Link(), counts)
    assert link.master == "the SPI master"
    coro = link.exchange(protocol.encode_request(Cmd.START, 0, b""))
    try:
        coro.send(None)
    except StopIteration as done:
        assert done.value == protocol.encode_response(Status.ACK, b"")
    assert counts == {"START ACK": 1}

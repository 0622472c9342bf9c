"""hdl.protocol's frame splitter: SYNC hunt, then the length from the header's LEN byte.

Expected frames are built with the encoders and cut by hand from known lengths (a request is
SYNC CMD ADDR_HI ADDR_LO LEN payload CRC, a response SYNC STATUS LEN payload CRC).
"""

import random

import pytest

from hdl import protocol
from hdl.protocol import SYNC, Cmd, FrameSplitter, Reg, Status, encode_request, encode_response


def test_request_frames_come_out_whole_at_their_last_byte():
    frames = [encode_request(Cmd.READ_REG, Reg.ID), encode_request(Cmd.WRITE_BUF, 3, bytes(range(9))),
              encode_request(Cmd.WRITE_REG, Reg.SCRATCH, b"\xa5\xa5\xa5\xa5")]   # SYNC in the payload
    assert [len(f) for f in frames] == [6, 15, 10]
    s = FrameSplitter("request")
    for frame in frames:
        got = [s.push(b) for b in frame]
        assert got[:-1] == [None] * (len(frame) - 1) and got[-1] == frame
        assert not s.in_frame and s.partial == b""


def test_response_frames_use_the_three_byte_header():
    frames = [encode_response(Status.ACK), encode_response(Status.NACK, bytes([3])),
              encode_response(Status.ACK, bytes(255))]
    assert [len(f) for f in frames] == [4, 5, 259]
    assert FrameSplitter("response").feed(b"".join(frames)) == frames
    # A request's header is five bytes: an empty response is not a frame there.
    as_request = FrameSplitter("request")
    assert as_request.feed(frames[0]) == [] and as_request.partial == frames[0]


def test_bytes_before_sync_are_skipped_and_a_partial_frame_is_kept():
    frame = encode_request(Cmd.READ_BUF, 0, b"\x04")
    s = FrameSplitter()
    assert s.feed(b"\x00\xff\x13" + frame[:4]) == []
    assert s.in_frame and s.partial == frame[:4]
    assert s.feed(frame[4:] + b"\x00") == [frame]
    assert not s.in_frame


def test_drop_partial_hunts_again():
    s = FrameSplitter()
    assert s.drop_partial() is False              # nothing under way
    s.feed(encode_request(Cmd.START)[:3])
    assert s.drop_partial() is True and not s.in_frame and s.partial == b""
    # The rest of the cut frame is garbage now: no SYNC in it, nothing comes out.
    rest = encode_request(Cmd.START)[3:]
    assert SYNC not in rest and s.feed(rest) == []
    assert s.feed(encode_request(Cmd.START)) == [encode_request(Cmd.START)]


def test_random_streams_split_back_into_their_frames():
    rng = random.Random(13)
    for direction, encode in (("request", lambda p: encode_request(rng.choice(list(Cmd)),
                                                                     rng.randrange(1 << 16), p)),
                              ("response", lambda p: encode_response(Status.ACK, p))):
        frames, stream = [], b""
        for _ in range(200):
            frame = encode(bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 4, 255]))))
            gap = bytes(rng.choice([b for b in range(256) if b != SYNC]) for _ in range(rng.randrange(3)))
            frames.append(frame)
            stream += gap + frame
        s = FrameSplitter(direction)
        got = []
        while stream:                             # in chunks of any size
            n = rng.randrange(1, 40)
            got += s.feed(stream[:n])
            stream = stream[n:]
        assert got == frames and not s.in_frame


def test_lengths_and_directions():
    assert protocol.request_length(encode_request(Cmd.WRITE_BUF, 0, bytes(7))[:5]) == 13
    assert protocol.response_length(encode_response(Status.ACK, bytes(2))[:3]) == 6
    with pytest.raises(ValueError, match="direction"):
        FrameSplitter("sideways")

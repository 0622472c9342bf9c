"""The frame check of the host protocol against its published definition."""

from hdl import protocol


def crc8_bitwise(data: bytes, poly=0x2F, init=0xFF, xor_out=0xFF) -> int:
    """CRC-8/AUTOSAR from its definition: MSB first, no reflection, poly 0x2F, init and
    final XOR 0xFF (AUTOSAR SWS CRC Library, "8-bit 0x2F polynomial CRC calculation")."""
    crc = init
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc ^ xor_out


def test_crc8_autosar_check_value():
    # The catalogued check value of CRC-8/AUTOSAR (the CRC of the ASCII bytes "123456789").
    assert crc8_bitwise(b"123456789") == 0xDF
    assert protocol.crc8(b"123456789") == 0xDF
    # ... and a frame's CRC byte is that CRC over everything between SYNC and CRC.
    frame = protocol.encode_request(protocol.Cmd.READ_REG, protocol.Reg.ID)
    assert frame[:-1] == bytes([protocol.SYNC, 0x02, 0x00, 0x00, 0x00])
    assert frame[-1] == crc8_bitwise(frame[1:-1])

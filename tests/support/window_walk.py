"""The window generator's element stream written from the spec as plain loops (raster
positions, taps in im2col order, only the S new columns of a sliding window): the reference of
`tests/hdl/test_window.py` (simulation) and `tests/hdl/test_window_formal.py` (proofs)."""

__all__ = ["walk"]


def walk(height, width, channels, kernel, stride, padding, base, slide=False):
    """Every element of the walk, in order: (addr, pad, row, last_in_window, last_position,
    slide, oy, ox, ky, kx, c, y0, x0)."""
    H, W, C, K, S, P = height, width, channels, kernel, stride, padding
    h_out, w_out = (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1
    out = []
    for oy in range(h_out):
        for ox in range(w_out):
            slides = slide and S < K and ox > 0
            for ky in range(K):
                for kx in range(K - S if slides else 0, K):
                    for c in range(C):
                        y, x = oy * S - P + ky, ox * S - P + kx
                        inside = 0 <= y < H and 0 <= x < W
                        out.append((base + (y * W + x) * C + c if inside else 0, int(not inside),
                                    (ky * K + kx) * C + c, int((ky, kx, c) == (K - 1, K - 1, C - 1)),
                                    int((oy, ox) == (h_out - 1, w_out - 1)), int(slides),
                                    oy, ox, ky, kx, c, oy * S - P, ox * S - P))
    return out

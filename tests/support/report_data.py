"""Hand-made classification results shared by the metrics, report-file and `report` command
tests, and the PNG file signature they check."""

__all__ = ["CM3", "LABELS3", "PNG_SIGNATURE", "PREDS3"]

# A 3-class case, true class in rows, predicted in columns:
#            pred 0  1  2     support
#   true 0:       3  1  0     4
#   true 1:       1  2  0     3
#   true 2:       0  1  2     3
#   predicted:    4  4  2     n = 10, trace 7
LABELS3 = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
PREDS3 = [0, 0, 0, 1, 0, 1, 1, 1, 2, 2]
CM3 = [[3, 1, 0], [1, 2, 0], [0, 1, 2]]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

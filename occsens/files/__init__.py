"""Files occsens reads and writes, and nothing else: ``read.py`` reads a file at most as large as its
format allows; ``write.py`` writes output folders whole (all files of a command together, or none).

Named ``files`` so it is not confused with ``output=``, what a model returns.
"""

from occsens.files.read import bounded_stream, open_regular, path_kind, read_bounded, read_json
from occsens.files.write import check_out_dir, check_out_file, recover, write_files, write_together

__all__ = [
    "bounded_stream",
    "check_out_dir",
    "check_out_file",
    "open_regular",
    "path_kind",
    "read_bounded",
    "read_json",
    "recover",
    "write_files",
    "write_together",
]

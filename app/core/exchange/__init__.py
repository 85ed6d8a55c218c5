"""Export and import of conversations: Hearth's JSON (every branch), Markdown (the branch
shown), and ChatGPT's data export. Qt-free and store-agnostic: the formats live in
hearth_json.py, markdown.py and chatgpt.py, file checks in files.py, and importing.py runs an
export or an import through anything shaped like store.Store.
"""

from app.core.exchange.files import MAX_IMPORT_BYTES, read_json_file, write_export
from app.core.exchange.importing import (
    ExchangeStore,
    ExportFormat,
    ImportReport,
    export_text,
    import_file,
    read_conversations,
)

__all__ = [
    "MAX_IMPORT_BYTES",
    "ExchangeStore",
    "ExportFormat",
    "ImportReport",
    "export_text",
    "import_file",
    "read_conversations",
    "read_json_file",
    "write_export",
]

"""Your documents (issue 25, the retrieval flow): files and folders a person adds to collections,
indexed in the background (extract, chunk, embed, store) and searched before a turn's prompt is
built, so answers can quote them with their sources.

Must not: import Qt, or run on the stream path (retrieval runs before the prompt, with a time budget).
"""

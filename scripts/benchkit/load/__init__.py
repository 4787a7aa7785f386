"""loadgen's parts: pre-signing, funding and sending, confirmation tracking,
the summary."""

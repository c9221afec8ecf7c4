"""The HTTP service: ``fastseg serve`` assigns customers to segments over loopback or with a
token, the model file watched and swapped in atomically."""

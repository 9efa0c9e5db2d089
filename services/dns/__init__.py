"""The cluster DNS server (`navarch dns`): Services and pods by name. See README.md."""

"""What every toolchain stage shares: config composition, the entry point and exit codes, run
folders, file hashing and the usage error (the lean runtime uses none of it)."""

"""Benefits back-office simulator: SFTP file exchange with a batch job that answers change files."""

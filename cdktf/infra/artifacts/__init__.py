"""What a deploy uploads, built at synth: the producer and job artifacts (content-hashed, with the
locked wheels), and the boot scripts that install them with no index."""

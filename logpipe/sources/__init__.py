"""Sources: what the pipeline reads, each batch with the Position it resumes from once delivered.

base    the Source protocol (open, poll, batches, ack, settled, ended, publish, close), Until
files   FileSource: globs tailed by FileWatcher (identity, rotation), checkpoints as positions
stdin   StdinSource: standard input spooled to a file, then read as one to its end
kafka   KafkaSource: a consumer group member; decodes canonical records; offsets as positions
"""

"""Where commands run: this machine (subprocess) or a host over SSH (asyncssh pool).
Every command is an argv list of validated parts; for SSH it is quoted with shlex.join
so that no worker id, branch or task text can become shell syntax."""

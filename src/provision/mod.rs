//! Provisioners: shell, script and file, run over SSH (not landed yet).

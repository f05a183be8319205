"""shmctl watch: snapshots of the segments over time, their differences as events, and what
wakes the loop early.

- events.py: two snapshots -> the events between them (pure: no kernel, no clock);
- notify.py: inotify and fanotify on /dev/shm (fanotify names the pid that created, removed
  or resized an object where the kernel lets this process see it: root);
- loop.py: the poll loop: one collect (one read of /proc/sysvipc/shm, one maps scan) per
  interval, or at once when /dev/shm changes; the state kept is the last snapshot only.
"""

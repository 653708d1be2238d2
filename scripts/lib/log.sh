# shellcheck shell=bash
# Messages of the scripts, in one format; source it (scripts/lib/processes.sh does). Both go
# to stderr, so that stdout holds only what a script prints as its result.
#
# log MESSAGE...   "[NAME  Ns] MESSAGE": NAME is the script's file name without .sh, N the
#                  seconds since START (the script's start time; set here if it is not yet)
# die MESSAGE...   "NAME: error: MESSAGE", then exit 1

START=${START:-$SECONDS}
_log_name=${0##*/}
_log_name=${_log_name%.sh}

log() { printf '[%s %3ds] %s\n' "$_log_name" "$((SECONDS - START))" "$*" >&2; }
die() { printf '%s: error: %s\n' "$_log_name" "$*" >&2; exit 1; }

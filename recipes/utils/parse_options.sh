#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by recipes after they set their defaults:
#   --foo-bar VALUE  or  --foo-bar=VALUE   sets the shell variable foo_bar=VALUE.
# Only variables that already exist may be set; an unknown option is an error (exit 2).
# Positional arguments after the options are left in "$@".
# shellcheck disable=SC2034
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "usage: $0 [--option value ...]" >&2
      echo "options (current values):" >&2
      for __v in ${__option_names:-}; do echo "  --${__v//_/-} ${!__v}" >&2; done
      exit 0 ;;
    --*=*) __name="${1%%=*}"; __value="${1#*=}"; shift ;;
    --*)
      __name="$1"
      if [ $# -lt 2 ]; then echo "$0: error: option $1 needs a value" >&2; exit 2; fi
      __value="$2"; shift 2 ;;
    *) break ;;
  esac
  __var="${__name#--}"; __var="${__var//-/_}"
  if ! [[ "$__var" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!__var+x}" ]; then
    echo "$0: error: unknown option ${__name}" >&2
    exit 2
  fi
  printf -v "$__var" '%s' "$__value"
done
unset __name __value __var
true

# Shared build for every Lambda in functions/<name>/ (SAM BuildMethod: makefile). A function's
# folder Makefile sets FUNCTION to its logical ID and includes this file.
#
# A function ships only its own Python files: every dependency, the core included, comes from
# CoreLayer, so a code change redeploys a few kilobytes. SAM runs make in a scratch copy of the
# folder; files are taken from the folder of the including Makefile so the result is the same
# with or without --build-in-source.

ifndef FUNCTION
$(error set FUNCTION to the function's logical ID before including function.mk)
endif
ifndef ARTIFACTS_DIR
$(error ARTIFACTS_DIR is not set: this Makefile is run by `sam build`)
endif

FUNCTION_DIR := $(patsubst %/,%,$(dir $(abspath $(firstword $(MAKEFILE_LIST)))))
# Tests and caches stay behind; subpackages keep their layout.
FUNCTION_PY_FILES := $(shell cd "$(FUNCTION_DIR)" && find . -name '*.py' \
	-not -path '*/__pycache__/*' -not -path '*/tests/*' -not -name 'test_*.py' -not -name 'conftest.py' | sort)

.PHONY: build-$(FUNCTION)

build-$(FUNCTION):
	@test -f "$(FUNCTION_DIR)/app.py" || { echo "$(FUNCTION): $(FUNCTION_DIR)/app.py is missing" >&2; exit 1; }
	mkdir -p "$(ARTIFACTS_DIR)"
	tar -C "$(FUNCTION_DIR)" -cf - $(FUNCTION_PY_FILES) | tar -C "$(ARTIFACTS_DIR)" -xf -

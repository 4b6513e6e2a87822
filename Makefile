# The two commands a user needs: `make demo` and `make test`. Both install what is missing first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
# ccache and precompiled headers work together only with these settings.
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_DIR ?= $(HOME)/.cache/ccache

.PHONY: setup build demo test bench clean

setup:
	@bash scripts/setup.sh

$(BUILD_DIR)/build.ninja $(BUILD_DIR)/Makefile:
	cmake -S . -B $(BUILD_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release

CONFIGURED := $(BUILD_DIR)/$(if $(GENERATOR),build.ninja,Makefile)

# Every target: the program, the tests, the kernel benchmarks.
build: setup $(CONFIGURED)
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The demo needs the program alone, not the test suite: about half the build.
demo: setup $(CONFIGURED)
	cmake --build $(BUILD_DIR) -j $(JOBS) --target scorediff
	./$(BUILD_DIR)/scorediff demo --out runs/demo

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

bench: 
	@bash scripts/setup.sh --bench
	$(MAKE) build
	bash bench/compare_peer.sh
	bash bench/compare_unet.sh

clean:
	rm -rf $(BUILD_DIR)

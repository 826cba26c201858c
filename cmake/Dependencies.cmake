# Third-party libraries, all from Debian 12 packages (no downloads at configure time).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(CLI11 2.1 REQUIRED)
find_package(OpenSSL 3 REQUIRED COMPONENTS Crypto)  # SHA-256 only
if(BORA_BUILD_TESTS)
  find_package(GTest 1.12 REQUIRED)
endif()
if(BORA_BUILD_BENCH)
  find_package(benchmark 1.7 REQUIRED)
endif()
# Tokenizer backends: SentencePiece (v1..v7 .model files) and PCRE2 (Tekken pre-tokenizer).
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)

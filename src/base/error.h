// Typed exceptions thrown at boundaries (files, flags, requests); callers map them to messages.
#pragma once

#include <stdexcept>
#include <string>

namespace bora {

// Root of every error bora reports to a user; `what()` is a complete one-line message.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A caller passed a value that is out of range or inconsistent (flags, request fields).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A file's content is malformed or inconsistent with what it claims (headers, configs, shapes).
class FormatError : public Error {
 public:
  using Error::Error;
};

// A file or folder cannot be opened, read, written or mapped.
class IoError : public Error {
 public:
  using Error::Error;
};

// The work does not fit: memory budget, context length, capacity limits.
class ResourceExhausted : public Error {
 public:
  using Error::Error;
};

// A feature that the input asks for and bora does not support (yet), named in the message.
class Unsupported : public Error {
 public:
  using Error::Error;
};

}  // namespace bora

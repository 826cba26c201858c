// Building blocks for JSON grammars: separators in one style, literals, bounded numbers and
// integer ranges, strings, and shared rules for any JSON value, object or array.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/constraint/grammar.h"

namespace bora::runtime::constraint {

struct JsonOptions {
  // false: compact JSON (separators exactly "," and ":"); true: Python json.dumps style
  // (", " and ": "), what Mistral models see for tool-call arguments. No other whitespace.
  bool spaced = false;
  // Bounds that keep every number finite in length so a random model terminates.
  int32_t max_integer_digits = 15;   // digits before the point
  int32_t max_fraction_digits = 15;  // digits after the point
  int32_t max_exponent_digits = 2;   // digits of an exponent (unbounded numbers only)
};

// Numeric bounds of a JSON Schema number or integer (inclusive or exclusive).
struct NumberBounds {
  std::optional<double> minimum, maximum;
  bool exclusive_minimum = false, exclusive_maximum = false;
  bool any() const { return minimum || maximum; }
};

// Adds JSON pieces to a GrammarBuilder; the generic rules are created once, on first use.
class JsonGrammarWriter {
 public:
  JsonGrammarWriter(GrammarBuilder& builder, const JsonOptions& options);

  GrammarBuilder& builder() { return builder_; }
  const JsonOptions& options() const { return options_; }
  std::string_view item_separator() const { return options_.spaced ? ", " : ","; }
  std::string_view key_separator() const { return options_.spaced ? ": " : ":"; }

  void Literal(int32_t from, int32_t to, std::string_view text) {
    builder_.Literal(from, to, text);
  }
  // `value` serialised in this style (object keys in the order nlohmann::json keeps them).
  std::string Serialize(const nlohmann::ordered_json& value) const;
  // A string literal with [min_chars, max_chars] characters (-1: unbounded).
  void String(int32_t from, int32_t to, int32_t min_chars, int32_t max_chars) {
    builder_.JsonString(from, to, min_chars, max_chars);
  }
  // A number (integer = no fraction or exponent); with bounds, a subset of the numbers inside
  // them (integral bounds are exact; others are rounded inwards; bounded numbers have no
  // exponent). Throws InvalidArgument when no number with bounded digits fits.
  void Number(int32_t from, int32_t to, bool integer, const NumberBounds& bounds);
  // min..max copies of bytes in [lo, hi].
  void RepeatBytes(int32_t from, int32_t to, uint8_t lo, uint8_t hi, int32_t min, int32_t max);

  void AnyValue(int32_t from, int32_t to) { builder_.CallRule(from, to, ValueRule()); }
  void AnyObject(int32_t from, int32_t to) { builder_.CallRule(from, to, ObjectRule()); }
  void AnyArray(int32_t from, int32_t to) { builder_.CallRule(from, to, ArrayRule()); }

 private:
  int32_t NewState(int32_t from) { return builder_.NewState(builder_.RuleOf(from)); }
  int32_t ValueRule();
  int32_t ObjectRule();
  int32_t ArrayRule();
  void Serialize(const nlohmann::ordered_json& value, std::string& out) const;
  void UnboundedNumber(int32_t from, int32_t to, bool integer);
  // Decimal integers in [lo, hi], 0 <= lo <= hi, no leading zeros.
  void UnsignedRange(int32_t from, int32_t to, int64_t lo, int64_t hi);
  void SameLengthRange(int32_t from, int32_t to, std::string_view lo, std::string_view hi);
  void OptionalFraction(int32_t from, int32_t to, bool zeros_only);

  GrammarBuilder& builder_;
  JsonOptions options_;
  int32_t value_rule_ = -1, object_rule_ = -1, array_rule_ = -1;
};

}  // namespace bora::runtime::constraint

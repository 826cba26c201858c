// JSON building blocks: serialisation of literals, numbers (bounded digits, integer ranges),
// and the generic value/object/array rules.
#include "runtime/constraint/json_grammar.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.h"

namespace bora::runtime::constraint {
namespace {

int64_t PowerOfTen(int32_t exponent) {
  int64_t value = 1;
  for (int32_t i = 0; i < exponent; ++i) value *= 10;
  return value;
}

int32_t Digits(int64_t value) { return static_cast<int32_t>(std::to_string(value).size()); }

bool AllOf(std::string_view text, char c) {
  return std::all_of(text.begin(), text.end(), [c](char x) { return x == c; });
}

}  // namespace

JsonGrammarWriter::JsonGrammarWriter(GrammarBuilder& builder, const JsonOptions& options)
    : builder_(builder), options_(options) {
  if (options_.max_integer_digits < 1 || options_.max_integer_digits > 18 ||
      options_.max_fraction_digits < 1 || options_.max_fraction_digits > 64 ||
      options_.max_exponent_digits < 1 || options_.max_exponent_digits > 3) {
    throw InvalidArgument(
        "JSON options: digits must be 1..18 (integer part), 1..64 (fraction), 1..3 (exponent)");
  }
}

std::string JsonGrammarWriter::Serialize(const nlohmann::ordered_json& value) const {
  std::string out;
  Serialize(value, out);
  return out;
}

void JsonGrammarWriter::Serialize(const nlohmann::ordered_json& value, std::string& out) const {
  if (value.is_object()) {
    out += '{';
    bool first = true;
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (!first) out += item_separator();
      first = false;
      out += nlohmann::ordered_json(it.key()).dump(
          -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
      out += key_separator();
      Serialize(it.value(), out);
    }
    out += '}';
  } else if (value.is_array()) {
    out += '[';
    for (size_t i = 0; i < value.size(); ++i) {
      if (i > 0) out += item_separator();
      Serialize(value[i], out);
    }
    out += ']';
  } else {
    out += value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }
}

void JsonGrammarWriter::RepeatBytes(int32_t from, int32_t to, uint8_t lo, uint8_t hi, int32_t min,
                                    int32_t max) {
  int32_t current = from;
  for (int32_t i = 0; i < min; ++i) {
    const int32_t next = (i + 1 == min && max == min) ? to : NewState(from);
    builder_.Bytes(current, next, lo, hi);
    current = next;
  }
  if (max == min) {
    if (min == 0) builder_.Epsilon(from, to);
    return;
  }
  if (max < 0) {  // unbounded: a loop on a state of its own
    if (current == from) {
      current = NewState(from);
      builder_.Epsilon(from, current);
    }
    builder_.Bytes(current, current, lo, hi);
    builder_.Epsilon(current, to);
    return;
  }
  for (int32_t i = min; i < max; ++i) {
    builder_.Epsilon(current, to);
    const int32_t next = i + 1 == max ? to : NewState(from);
    builder_.Bytes(current, next, lo, hi);
    current = next;
  }
}

void JsonGrammarWriter::UnboundedNumber(int32_t from, int32_t to, bool integer) {
  const int32_t sign = NewState(from);
  builder_.Epsilon(from, sign);
  builder_.Byte(from, sign, '-');
  const int32_t int_end = NewState(from);
  builder_.Byte(sign, int_end, '0');
  const int32_t lead = NewState(from);
  builder_.Bytes(sign, lead, '1', '9');
  RepeatBytes(lead, int_end, '0', '9', 0, options_.max_integer_digits - 1);
  if (integer) {
    builder_.Epsilon(int_end, to);
    return;
  }
  const int32_t fraction_end = NewState(from);
  builder_.Epsilon(int_end, fraction_end);
  const int32_t point = NewState(from);
  builder_.Byte(int_end, point, '.');
  RepeatBytes(point, fraction_end, '0', '9', 1, options_.max_fraction_digits);
  builder_.Epsilon(fraction_end, to);
  const int32_t e = NewState(from);
  builder_.Byte(fraction_end, e, 'e');
  builder_.Byte(fraction_end, e, 'E');
  const int32_t exponent_sign = NewState(from);
  builder_.Epsilon(e, exponent_sign);
  builder_.Byte(e, exponent_sign, '+');
  builder_.Byte(e, exponent_sign, '-');
  RepeatBytes(exponent_sign, to, '0', '9', 1, options_.max_exponent_digits);
}

void JsonGrammarWriter::SameLengthRange(int32_t from, int32_t to, std::string_view lo,
                                        std::string_view hi) {
  const size_t n = lo.size();
  if (n == 0) {
    builder_.Epsilon(from, to);
    return;
  }
  const auto rest = static_cast<int32_t>(n - 1);
  if (AllOf(lo.substr(1), '0') && AllOf(hi.substr(1), '9')) {
    const int32_t s = n == 1 ? to : NewState(from);
    builder_.Bytes(from, s, lo[0], hi[0]);
    if (n > 1) RepeatBytes(s, to, '0', '9', rest, rest);
    return;
  }
  if (lo[0] == hi[0]) {
    const int32_t s = NewState(from);
    builder_.Byte(from, s, lo[0]);
    SameLengthRange(s, to, lo.substr(1), hi.substr(1));
    return;
  }
  const int32_t low = NewState(from);
  builder_.Byte(from, low, lo[0]);
  SameLengthRange(low, to, lo.substr(1), std::string(n - 1, '9'));
  if (lo[0] + 1 <= hi[0] - 1) {
    const int32_t middle = NewState(from);
    builder_.Bytes(from, middle, lo[0] + 1, hi[0] - 1);
    RepeatBytes(middle, to, '0', '9', rest, rest);
  }
  const int32_t high = NewState(from);
  builder_.Byte(from, high, hi[0]);
  SameLengthRange(high, to, std::string(n - 1, '0'), hi.substr(1));
}

void JsonGrammarWriter::UnsignedRange(int32_t from, int32_t to, int64_t lo, int64_t hi) {
  for (int32_t length = Digits(lo); length <= Digits(hi); ++length) {
    const int64_t a = std::max(lo, length == 1 ? int64_t{0} : PowerOfTen(length - 1));
    const int64_t b = std::min(hi, PowerOfTen(length) - 1);
    if (a <= b) SameLengthRange(from, to, std::to_string(a), std::to_string(b));
  }
}

void JsonGrammarWriter::OptionalFraction(int32_t from, int32_t to, bool zeros_only) {
  builder_.Epsilon(from, to);
  const int32_t point = NewState(from);
  builder_.Byte(from, point, '.');
  RepeatBytes(point, to, '0', zeros_only ? '0' : '9', 1, options_.max_fraction_digits);
}

void JsonGrammarWriter::Number(int32_t from, int32_t to, bool integer, const NumberBounds& bounds) {
  if (!bounds.any()) {
    UnboundedNumber(from, to, integer);
    return;
  }
  // Integral bounds [lo, hi], rounded inwards, within the digit limit.
  const int64_t limit = PowerOfTen(options_.max_integer_digits) - 1;
  const auto clamp = [&](double v) {
    return static_cast<int64_t>(
        std::clamp(v, -static_cast<double>(limit) - 1.0, static_cast<double>(limit) + 1.0));
  };
  int64_t lo = -limit, hi = limit;
  if (bounds.minimum) {
    const double m = *bounds.minimum;
    if (!std::isfinite(m)) throw InvalidArgument("minimum must be a finite number");
    double c = std::ceil(m);
    if (bounds.exclusive_minimum && c == m) c += 1;
    lo = std::max(lo, clamp(c));
  }
  if (bounds.maximum) {
    const double m = *bounds.maximum;
    if (!std::isfinite(m)) throw InvalidArgument("maximum must be a finite number");
    double f = std::floor(m);
    if (bounds.exclusive_maximum && f == m) f -= 1;
    hi = std::min(hi, clamp(f));
  }
  if (lo > hi) {
    throw InvalidArgument(
        "number bounds admit no value that bora can generate (bounds are rounded inwards to "
        "integers, at most " +
        std::to_string(options_.max_integer_digits) + " digits)");
  }
  if (integer) {
    if (lo < 0) {
      const int64_t negative_hi = std::min<int64_t>(hi, -1);
      const int32_t minus = NewState(from);
      builder_.Byte(from, minus, '-');
      UnsignedRange(minus, to, -negative_hi, -lo);
    }
    if (hi >= 0) UnsignedRange(from, to, std::max<int64_t>(lo, 0), hi);
    return;
  }
  // x = sign I[.F]: within [a, b] (0 <= a) when a <= I < b with any fraction, or I == b with a
  // zero fraction; negative numbers mirror this on the magnitude.
  auto magnitude = [&](int32_t start, int64_t a, int64_t b) {
    if (a <= b - 1) {
      const int32_t s = NewState(from);
      UnsignedRange(start, s, a, b - 1);
      OptionalFraction(s, to, false);
    }
    const int32_t s = NewState(from);
    UnsignedRange(start, s, b, b);
    OptionalFraction(s, to, true);
  };
  if (hi >= 0) magnitude(from, std::max<int64_t>(lo, 0), hi);
  if (lo < 0) {
    const int32_t minus = NewState(from);
    builder_.Byte(from, minus, '-');
    magnitude(minus, hi < 0 ? -hi : 0, -lo);
  }
}

int32_t JsonGrammarWriter::ValueRule() {
  if (value_rule_ >= 0) return value_rule_;
  value_rule_ = builder_.AddRule("json_value");
  const int32_t s = builder_.Start(value_rule_), f = builder_.Final(value_rule_);
  builder_.CallRule(s, f, ObjectRule());
  builder_.CallRule(s, f, ArrayRule());
  String(s, f, 0, -1);
  UnboundedNumber(s, f, false);
  Literal(s, f, "true");
  Literal(s, f, "false");
  Literal(s, f, "null");
  return value_rule_;
}

int32_t JsonGrammarWriter::ObjectRule() {
  if (object_rule_ >= 0) return object_rule_;
  object_rule_ = builder_.AddRule("json_object");
  const int32_t s = builder_.Start(object_rule_), f = builder_.Final(object_rule_);
  const int32_t open = NewState(s), member = NewState(s);
  builder_.Byte(s, open, '{');
  builder_.Byte(open, f, '}');
  // `open` or `next` → "key": value → `member`; then "}" or a separator and another member.
  const int32_t next = NewState(s);
  for (int32_t start : {open, next}) {
    const int32_t key = NewState(s), colon = NewState(s);
    String(start, key, 0, -1);
    Literal(key, colon, key_separator());
    builder_.CallRule(colon, member, ValueRule());
  }
  builder_.Byte(member, f, '}');
  Literal(member, next, item_separator());
  return object_rule_;
}

int32_t JsonGrammarWriter::ArrayRule() {
  if (array_rule_ >= 0) return array_rule_;
  array_rule_ = builder_.AddRule("json_array");
  const int32_t s = builder_.Start(array_rule_), f = builder_.Final(array_rule_);
  const int32_t open = NewState(s), item = NewState(s), next = NewState(s);
  builder_.Byte(s, open, '[');
  builder_.Byte(open, f, ']');
  builder_.CallRule(open, item, ValueRule());
  builder_.CallRule(next, item, ValueRule());
  builder_.Byte(item, f, ']');
  Literal(item, next, item_separator());
  return array_rule_;
}

}  // namespace bora::runtime::constraint

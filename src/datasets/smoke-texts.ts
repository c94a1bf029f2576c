/**
 * A small built-in set of Python snippets, written for evalpipe, available as the source `builtin:smoke`.
 * It lets perplexity and engine tests run with no network and no cache. Lengths vary on purpose: a few texts
 * are longer than 600 characters so that windowed scoring with small contexts is exercised.
 */
export const SMOKE_SOURCE_ID = 'builtin:smoke';

export interface SmokeText {
  name: string;
  text: string;
}

export const SMOKE_TEXTS: readonly SmokeText[] = [
  {
    name: 'add',
    text: 'def add(a, b):\n    return a + b\n',
  },
  {
    name: 'is_even',
    text: 'def is_even(n: int) -> bool:\n    """Return True when n is divisible by two."""\n    return n % 2 == 0\n',
  },
  {
    name: 'clamp',
    text:
      'def clamp(value, low, high):\n' +
      '    """Limit value to the closed range [low, high]."""\n' +
      '    if low > high:\n' +
      '        raise ValueError("low must not exceed high")\n' +
      '    return max(low, min(value, high))\n',
  },
  {
    name: 'factorial',
    text:
      'def factorial(n):\n' +
      '    if n < 0:\n' +
      '        raise ValueError("factorial is undefined for negative numbers")\n' +
      '    result = 1\n' +
      '    for k in range(2, n + 1):\n' +
      '        result *= k\n' +
      '    return result\n',
  },
  {
    name: 'fibonacci',
    text:
      'def fibonacci(count):\n' +
      '    """Yield the first `count` Fibonacci numbers."""\n' +
      '    a, b = 0, 1\n' +
      '    for _ in range(count):\n' +
      '        yield a\n' +
      '        a, b = b, a + b\n\n\n' +
      'print(list(fibonacci(10)))\n',
  },
  {
    name: 'reverse_words',
    text: 'def reverse_words(sentence: str) -> str:\n    return " ".join(reversed(sentence.split()))\n',
  },
  {
    name: 'count_vowels',
    text: 'VOWELS = set("aeiouAEIOU")\n\n\n' + 'def count_vowels(text):\n' + '    return sum(1 for ch in text if ch in VOWELS)\n',
  },
  {
    name: 'binary_search',
    text:
      'def binary_search(items, target):\n' +
      '    """Return the index of target in the sorted list items, or -1."""\n' +
      '    lo, hi = 0, len(items) - 1\n' +
      '    while lo <= hi:\n' +
      '        mid = (lo + hi) // 2\n' +
      '        if items[mid] == target:\n' +
      '            return mid\n' +
      '        if items[mid] < target:\n' +
      '            lo = mid + 1\n' +
      '        else:\n' +
      '            hi = mid - 1\n' +
      '    return -1\n',
  },
  {
    name: 'stack_class',
    text:
      'class Stack:\n' +
      '    """A last-in, first-out container backed by a list."""\n\n' +
      '    def __init__(self):\n' +
      '        self._items = []\n\n' +
      '    def push(self, item):\n' +
      '        self._items.append(item)\n\n' +
      '    def pop(self):\n' +
      '        if not self._items:\n' +
      '            raise IndexError("pop from an empty stack")\n' +
      '        return self._items.pop()\n\n' +
      '    def peek(self):\n' +
      '        return self._items[-1] if self._items else None\n\n' +
      '    def __len__(self):\n' +
      '        return len(self._items)\n',
  },
  {
    name: 'word_frequencies',
    text:
      'from collections import Counter\n' +
      'import re\n\n\n' +
      'def word_frequencies(text, top=5):\n' +
      '    words = re.findall(r"[a-z\']+", text.lower())\n' +
      '    return Counter(words).most_common(top)\n',
  },
  {
    name: 'read_config',
    text:
      'import json\n' +
      'from pathlib import Path\n\n\n' +
      'def read_config(path):\n' +
      '    """Load a JSON config file, returning an empty dict when it is missing."""\n' +
      '    file = Path(path)\n' +
      '    if not file.exists():\n' +
      '        return {}\n' +
      '    with file.open(encoding="utf-8") as handle:\n' +
      '        return json.load(handle)\n',
  },
  {
    name: 'point_dataclass',
    text:
      'from dataclasses import dataclass\n' +
      'import math\n\n\n' +
      '@dataclass(frozen=True)\n' +
      'class Point:\n' +
      '    x: float\n' +
      '    y: float\n\n' +
      '    def distance_to(self, other: "Point") -> float:\n' +
      '        return math.hypot(self.x - other.x, self.y - other.y)\n\n' +
      '    def translated(self, dx: float, dy: float) -> "Point":\n' +
      '        return Point(self.x + dx, self.y + dy)\n',
  },
  {
    name: 'flatten',
    text:
      'def flatten(nested):\n' +
      '    """Flatten arbitrarily nested lists into one flat list."""\n' +
      '    flat = []\n' +
      '    for item in nested:\n' +
      '        if isinstance(item, list):\n' +
      '            flat.extend(flatten(item))\n' +
      '        else:\n' +
      '            flat.append(item)\n' +
      '    return flat\n',
  },
  {
    name: 'is_palindrome',
    text:
      'def is_palindrome(text):\n' +
      '    cleaned = [ch.lower() for ch in text if ch.isalnum()]\n' +
      '    return cleaned == cleaned[::-1]\n\n\n' +
      'assert is_palindrome("A man, a plan, a canal: Panama")\n',
  },
  {
    name: 'timer_context',
    text:
      'import time\n' +
      'from contextlib import contextmanager\n\n\n' +
      '@contextmanager\n' +
      'def timer(label):\n' +
      '    start = time.perf_counter()\n' +
      '    try:\n' +
      '        yield\n' +
      '    finally:\n' +
      '        elapsed = time.perf_counter() - start\n' +
      '        print(f"{label}: {elapsed:.3f} s")\n',
  },
  {
    name: 'memoize',
    text:
      'import functools\n\n\n' +
      'def memoize(func):\n' +
      '    cache = {}\n\n' +
      '    @functools.wraps(func)\n' +
      '    def wrapper(*args):\n' +
      '        if args not in cache:\n' +
      '            cache[args] = func(*args)\n' +
      '        return cache[args]\n\n' +
      '    return wrapper\n',
  },
  {
    name: 'merge_sorted',
    text:
      'def merge_sorted(left, right):\n' +
      '    merged, i, j = [], 0, 0\n' +
      '    while i < len(left) and j < len(right):\n' +
      '        if left[i] <= right[j]:\n' +
      '            merged.append(left[i])\n' +
      '            i += 1\n' +
      '        else:\n' +
      '            merged.append(right[j])\n' +
      '            j += 1\n' +
      '    merged.extend(left[i:])\n' +
      '    merged.extend(right[j:])\n' +
      '    return merged\n',
  },
  {
    name: 'chunked',
    text:
      'def chunked(items, size):\n' +
      '    if size <= 0:\n' +
      '        raise ValueError("size must be positive")\n' +
      '    return [items[i:i + size] for i in range(0, len(items), size)]\n',
  },
  {
    name: 'bank_account',
    text:
      'class InsufficientFunds(Exception):\n' +
      '    """Raised when a withdrawal exceeds the balance."""\n\n\n' +
      'class BankAccount:\n' +
      '    def __init__(self, owner, balance=0):\n' +
      '        self.owner = owner\n' +
      '        self.balance = balance\n' +
      '        self.history = []\n\n' +
      '    def deposit(self, amount):\n' +
      '        if amount <= 0:\n' +
      '            raise ValueError("deposit must be positive")\n' +
      '        self.balance += amount\n' +
      '        self.history.append(("deposit", amount))\n\n' +
      '    def withdraw(self, amount):\n' +
      '        if amount > self.balance:\n' +
      '            raise InsufficientFunds(f"balance {self.balance} is below {amount}")\n' +
      '        self.balance -= amount\n' +
      '        self.history.append(("withdraw", amount))\n\n' +
      '    def statement(self):\n' +
      '        lines = [f"Account of {self.owner}"]\n' +
      '        for kind, amount in self.history:\n' +
      '            lines.append(f"  {kind:<10}{amount:>10.2f}")\n' +
      '        lines.append(f"  {\'balance\':<10}{self.balance:>10.2f}")\n' +
      '        return "\\n".join(lines)\n',
  },
  {
    name: 'csv_summary',
    text:
      'import csv\n' +
      'import statistics\n' +
      'from pathlib import Path\n\n\n' +
      'def summarize_column(path, column):\n' +
      '    """Return count, mean, median and standard deviation of a numeric CSV column.\n\n' +
      '    Rows whose cell is empty or not a number are skipped and counted separately,\n' +
      '    so a few bad rows do not hide the summary of the good ones.\n' +
      '    """\n' +
      '    values, skipped = [], 0\n' +
      '    with Path(path).open(newline="", encoding="utf-8") as handle:\n' +
      '        for row in csv.DictReader(handle):\n' +
      '            cell = (row.get(column) or "").strip()\n' +
      '            try:\n' +
      '                values.append(float(cell))\n' +
      '            except ValueError:\n' +
      '                skipped += 1\n' +
      '    if not values:\n' +
      '        return {"count": 0, "skipped": skipped}\n' +
      '    return {\n' +
      '        "count": len(values),\n' +
      '        "skipped": skipped,\n' +
      '        "mean": statistics.fmean(values),\n' +
      '        "median": statistics.median(values),\n' +
      '        "stdev": statistics.pstdev(values),\n' +
      '    }\n',
  },
  {
    name: 'lru_cache_class',
    text:
      'from collections import OrderedDict\n\n\n' +
      'class LRUCache:\n' +
      '    """Keep at most `capacity` entries, evicting the least recently used one."""\n\n' +
      '    def __init__(self, capacity: int):\n' +
      '        if capacity < 1:\n' +
      '            raise ValueError("capacity must be at least 1")\n' +
      '        self.capacity = capacity\n' +
      '        self._data: OrderedDict = OrderedDict()\n\n' +
      '    def get(self, key, default=None):\n' +
      '        if key not in self._data:\n' +
      '            return default\n' +
      '        self._data.move_to_end(key)\n' +
      '        return self._data[key]\n\n' +
      '    def put(self, key, value):\n' +
      '        if key in self._data:\n' +
      '            self._data.move_to_end(key)\n' +
      '        self._data[key] = value\n' +
      '        if len(self._data) > self.capacity:\n' +
      '            self._data.popitem(last=False)\n\n' +
      '    def __contains__(self, key):\n' +
      '        return key in self._data\n\n' +
      '    def __len__(self):\n' +
      '        return len(self._data)\n',
  },
  {
    name: 'matrix_ops',
    text:
      'def transpose(matrix):\n' +
      '    return [list(row) for row in zip(*matrix)]\n\n\n' +
      'def matmul(a, b):\n' +
      '    """Multiply two matrices given as lists of rows."""\n' +
      '    if not a or not b or len(a[0]) != len(b):\n' +
      '        raise ValueError("inner dimensions do not match")\n' +
      '    columns = transpose(b)\n' +
      '    return [[sum(x * y for x, y in zip(row, col)) for col in columns] for row in a]\n\n\n' +
      'def identity(n):\n' +
      '    return [[1 if i == j else 0 for j in range(n)] for i in range(n)]\n\n\n' +
      'def power(matrix, exponent):\n' +
      '    """Raise a square matrix to a non-negative integer power by repeated squaring."""\n' +
      '    if exponent < 0:\n' +
      '        raise ValueError("exponent must be non-negative")\n' +
      '    result = identity(len(matrix))\n' +
      '    base = matrix\n' +
      '    while exponent:\n' +
      '        if exponent & 1:\n' +
      '            result = matmul(result, base)\n' +
      '        base = matmul(base, base)\n' +
      '        exponent >>= 1\n' +
      '    return result\n',
  },
  {
    name: 'async_fetch_all',
    text:
      'import asyncio\n\n\n' +
      'async def fetch(name, delay):\n' +
      '    await asyncio.sleep(delay)\n' +
      '    return f"{name} done after {delay:.1f} s"\n\n\n' +
      'async def fetch_all(jobs, limit=3):\n' +
      '    """Run the jobs with at most `limit` of them in flight at once."""\n' +
      '    semaphore = asyncio.Semaphore(limit)\n\n' +
      '    async def guarded(name, delay):\n' +
      '        async with semaphore:\n' +
      '            return await fetch(name, delay)\n\n' +
      '    return await asyncio.gather(*(guarded(n, d) for n, d in jobs))\n\n\n' +
      'if __name__ == "__main__":\n' +
      '    results = asyncio.run(fetch_all([("a", 0.2), ("b", 0.1), ("c", 0.3), ("d", 0.1)]))\n' +
      '    for line in results:\n' +
      '        print(line)\n',
  },
  {
    name: 'tokenizer_state_machine',
    text:
      'import string\n\n\n' +
      'def tokenize(source):\n' +
      '    """Split a tiny arithmetic language into (kind, text) tokens.\n\n' +
      '    Kinds are NUMBER, NAME, OP and PAREN; whitespace separates tokens and is dropped.\n' +
      '    """\n' +
      '    tokens = []\n' +
      '    i = 0\n' +
      '    while i < len(source):\n' +
      '        ch = source[i]\n' +
      '        if ch.isspace():\n' +
      '            i += 1\n' +
      '        elif ch.isdigit():\n' +
      '            start = i\n' +
      '            while i < len(source) and (source[i].isdigit() or source[i] == "."):\n' +
      '                i += 1\n' +
      '            tokens.append(("NUMBER", source[start:i]))\n' +
      '        elif ch in string.ascii_letters or ch == "_":\n' +
      '            start = i\n' +
      '            while i < len(source) and (source[i].isalnum() or source[i] == "_"):\n' +
      '                i += 1\n' +
      '            tokens.append(("NAME", source[start:i]))\n' +
      '        elif ch in "+-*/^":\n' +
      '            tokens.append(("OP", ch))\n' +
      '            i += 1\n' +
      '        elif ch in "()":\n' +
      '            tokens.append(("PAREN", ch))\n' +
      '            i += 1\n' +
      '        else:\n' +
      '            raise SyntaxError(f"unexpected character {ch!r} at {i}")\n' +
      '    return tokens\n\n\n' +
      'print(tokenize("rate * (hours + 1.5) ^ 2"))\n',
  },
];

/** The smoke texts as rows with `name` and `text` columns. */
export function smokeRows(): Record<string, unknown>[] {
  return SMOKE_TEXTS.map((entry) => ({ name: entry.name, text: entry.text }));
}

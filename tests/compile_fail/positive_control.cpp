// The harness itself: an undeclared name is rejected at the marked line.
// expect-error: was not declared|undeclared identifier
int main() {
  return not_declared_anywhere;  // error-here
}

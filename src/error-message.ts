// The message of anything thrown: an Error's message, else its string form.
// A leaf that every part of src/ may import (docs/design.md, components).

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

import { assert } from "../shared/testing.ts";
import { sameSecret } from "./server.ts";

Deno.test("sameSecret() accepts only the exact token, whatever the lengths", () => {
  assert(sameSecret("s3cret", "s3cret"), "equal");
  for (const other of ["", "s3cre", "s3cret!", "S3cret", "x".repeat(1000)]) {
    assert(!sameSecret(other, "s3cret"), `"${other}" accepted`);
  }
});

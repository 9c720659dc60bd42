/**
 * One error type with a stable code, so tests and logs can match failures, and a WebSocket close code
 * for the ones that end a connection (after websockets/ws's error factory).
 */
export type ErrorCode =
  | "E_CONFIG"
  | "E_DATA"
  | "E_BACKEND"
  | "E_PROTOCOL"
  | "E_PROTOCOL_VERSION"
  | "E_FRAME_TOO_LARGE"
  | "E_BAD_MESSAGE"
  | "E_BAD_VALUES"
  | "E_AUTH"
  | "E_TIMEOUT"
  | "E_OVERLOADED"
  | "E_CLOSED"
  | "E_CHECKPOINT";

const CLOSE_CODES: Partial<Record<ErrorCode, number>> = {
  E_PROTOCOL: 1002,
  E_PROTOCOL_VERSION: 1002,
  E_BAD_MESSAGE: 1002,
  E_BAD_VALUES: 1007,
  E_FRAME_TOO_LARGE: 1009,
  E_AUTH: 1008,
  E_TIMEOUT: 1008,
  // "Try again later" (RFC 6455 registry).
  E_OVERLOADED: 1013,
};

export class GantryError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GantryError";
    this.code = code;
  }

  /** The WebSocket close status this error maps to (1011, internal error, when none fits better). */
  get closeCode(): number {
    return CLOSE_CODES[this.code] ?? 1011;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A whole HTTP/1.1 response as text, for a socket the HTTP server is not answering itself (a
 * refused upgrade or connection, a request it could not parse); it closes the connection.
 */
export function rawResponse(
  status: number,
  reason: string,
  body = '',
  contentType = 'application/json',
): string {
  return (
    `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: ${contentType}\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

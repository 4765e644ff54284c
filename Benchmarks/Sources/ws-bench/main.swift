// Placeholder until the WebSocket benchmark lands.

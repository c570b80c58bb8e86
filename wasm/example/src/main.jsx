import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BridgekeeperProvider } from "@bridgekeeper/client/react";
import { App } from "./App.jsx";

const config = {
  issuer: import.meta.env.VITE_ISSUER ?? "http://127.0.0.1:8080",
  clientId: import.meta.env.VITE_CLIENT_ID ?? "demo-spa",
  redirectUri: location.origin + "/callback",
  postLogoutRedirectUri: location.origin + "/",
};

createRoot(document.getElementById("root")).render(
  <StrictMode>
    <BridgekeeperProvider config={config}>
      <App issuer={config.issuer} apiUrl={import.meta.env.VITE_API_URL ?? "http://127.0.0.1:9090"} />
    </BridgekeeperProvider>
  </StrictMode>,
);

// The Serviceplatform administration page: plain JavaScript over the JSON admin API
// (docs/admin-api.md). Every URL is relative ("api/..."), so the page works under any prefix.
// No data is ever put into the page as HTML: everything goes in through textContent.
"use strict";

(() => {
  const TOKEN_KEY = "serviceplatform.admin.token";

  const TRANSITIONS = {
    requested: ["approve", "reject"],
    approved: ["suspend", "revoke"],
    suspended: ["resume", "revoke"],
    rejected: [],
    revoked: [],
  };

  const ACTIONS = {
    approve: { label: "Approve", done: "Approved", to: "approved", reason: false, danger: false },
    reject: { label: "Reject", done: "Rejected", to: "rejected", reason: true, danger: true },
    suspend: { label: "Suspend", done: "Suspended", to: "suspended", reason: true, danger: true },
    resume: { label: "Resume", done: "Resumed", to: "approved", reason: false, danger: false },
    revoke: { label: "Revoke", done: "Revoked", to: "revoked", reason: true, danger: true },
  };

  const ACTION_NOTES = {
    approve: "Calls are routed once the agreement is also configured and valid.",
    reject: "The request is closed; the supplier must request again.",
    suspend: "Calls under this agreement are refused until it is resumed.",
    resume: "Calls are routed again (if the agreement is configured and valid).",
    revoke: "Calls are refused from now on. This cannot be undone.",
  };

  const SYSTEM_ACTIONS = {
    deactivate: {
      label: "Deactivate",
      done: "Deactivated",
      reason: true,
      danger: true,
      note:
        "Its calls are refused (SP-218) until it is activated again; " +
        "its agreements and certificates are kept.",
    },
    activate: {
      label: "Activate",
      done: "Activated",
      reason: false,
      danger: false,
      note: "Its calls are accepted again with the certificates accepted now.",
    },
  };

  // The most a certificate file may be (the API takes 64 KiB of PEM text).
  const MAX_PEM_BYTES = 64 * 1024;

  const ROLE_TEXT = {
    operator: () => "platform operator",
    authority_admin: (me) => `administrator for authority ${me.authority_cvr}`,
    supplier: (me) => `supplier ${me.supplier}`,
  };

  const state = {
    me: null,
    tab: null,
    consumerSystems: null,
    services: new Set(),
    // Agreements this user changed since the filters last changed: they stay in the table
    // (marked) even when they no longer match the filters, so the result can be seen.
    changed: new Map(),
    detailUuid: null,
    // Consumer systems: the list, those this user changed (marked), the one shown in detail.
    systems: null,
    systemsChanged: new Set(),
    systemUuid: null,
    pending: null,
    opener: null,
    seq: {
      agreements: 0,
      detail: 0,
      systems: 0,
      system: 0,
      certificates: 0,
      runs: 0,
      audit: 0,
      messages: 0,
      message: 0,
      usage: 0,
    },
    // The message log: the cursors of the pages shown so far (null: the first page), the
    // filters they were asked with, and the message shown in detail.
    messagePages: [null],
    messageFilters: {},
    messageNext: null,
    messageRef: null,
  };

  const $ = (id) => document.getElementById(id);

  // --- small helpers --------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const pad = (n) => String(n).padStart(2, "0");

  // A point in time as the browser's local "YYYY-MM-DD hh:mm:ss".
  function timeText(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return (
      `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
    );
  }

  function timeEl(iso) {
    if (!iso) return "—";
    const text = timeText(iso);
    return text === String(iso) ? text : el("time", { datetime: iso, title: iso, text });
  }

  const dash = (value) => (value === null || value === undefined || value === "" ? "—" : value);

  function badge(value, kind, testid) {
    return el("span", {
      class: `badge ${kind}-${String(value).replace(/[^a-z0-9_-]/gi, "")}`,
      "data-testid": testid,
      text: value,
    });
  }

  function describe(agreement) {
    const system = agreement.consumer_system_name || agreement.consumer_system;
    return (
      `${agreement.service} for authority ${agreement.authority_cvr} ` +
      `(consumer system ${system}, supplier ${agreement.supplier})`
    );
  }

  function sysidsText(sysids) {
    const entries = Object.entries(sysids || {});
    return entries.length ? entries.map(([role, id]) => `${role}: ${id}`).join(", ") : "—";
  }

  function sysidsList(sysids) {
    const entries = Object.entries(sysids || {});
    if (!entries.length) return "—";
    return entries.map(([role, id]) => el("span", { class: "sysid", text: `${role}: ${id}` }));
  }

  function setTableState(table, value) {
    table.dataset.state = value;
    table.setAttribute("aria-busy", value === "loading" ? "true" : "false");
  }

  // Loads a table: only the newest load of its kind renders (an older answer that arrives
  // late is dropped), and the table's data-state says loading, ready or error.
  async function loadTable(kind, table, failure, request, render) {
    const seq = ++state.seq[kind];
    setTableState(table, "loading");
    try {
      const data = await request();
      if (seq !== state.seq[kind]) return;
      render(data);
      setTableState(table, "ready");
    } catch (error) {
      if (seq !== state.seq[kind]) return;
      setTableState(table, "error");
      if (state.me) showError(failure, error);
    }
  }

  // --- the API ------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, text) {
      super(`${code}: ${text}`);
      this.status = status;
      this.code = code;
      this.text = text;
    }
  }

  function errorText(error) {
    if (error instanceof ApiError) {
      return error.status
        ? `${error.code}: ${error.text} (HTTP ${error.status})`
        : `${error.code}: ${error.text}`;
    }
    return String(error && error.message ? error.message : error);
  }

  async function api(path, { method = "GET", body, query } = {}) {
    let url = `api/${path}`;
    if (query) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) {
        if (value !== undefined && value !== null && value !== "") params.set(key, value);
      }
      const text = params.toString();
      if (text) url += `?${text}`;
    }
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method, headers, cache: "no-store", credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      throw new ApiError(0, "network", `the platform could not be reached (${error.message})`);
    }
    const raw = await response.text();
    let data = null;
    if (raw) {
      try {
        data = JSON.parse(raw);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const problem = data && data.error ? data.error : {};
      const error = new ApiError(
        response.status,
        problem.code || `HTTP ${response.status}`,
        problem.text || response.statusText || "unexpected answer",
      );
      if (response.status === 401 && state.me && path !== "me") {
        signOut(`You were signed out: ${errorText(error)}`, true);
      }
      throw error;
    }
    if (data === null || typeof data !== "object") {
      throw new ApiError(response.status, "bad-answer", "the answer was not JSON");
    }
    return data;
  }

  // --- messages -----------------------------------------------------------------------------

  function notice(text) {
    const box = $("notice");
    box.replaceChildren(
      el("span", { text }),
      el("button", {
        type: "button",
        class: "link",
        text: "Dismiss",
        "aria-label": "Dismiss the notice",
        onclick: () => {
          box.hidden = true;
        },
      }),
    );
    box.hidden = false;
  }

  function showError(context, error) {
    const box = $("error");
    const parts = [el("strong", { text: `${context}: ` })];
    if (error instanceof ApiError) {
      parts.push(
        el("code", { "data-testid": "error-code", text: error.code }),
        " ",
        el("span", { "data-testid": "error-text", text: error.text }),
        error.status ? ` (HTTP ${error.status})` : "",
      );
    } else {
      parts.push(el("span", { "data-testid": "error-text", text: errorText(error) }));
    }
    parts.push(
      " ",
      el("button", {
        type: "button",
        class: "link",
        text: "Dismiss",
        "aria-label": "Dismiss the error",
        onclick: clearError,
      }),
    );
    box.replaceChildren(...parts);
    box.hidden = false;
  }

  function clearError() {
    $("error").hidden = true;
    $("error").replaceChildren();
  }

  function fieldError(id, text) {
    const box = $(id);
    box.textContent = text || "";
    box.hidden = !text;
  }

  // --- signing in and out -----------------------------------------------------------------

  // Whether the signed-in user may do `what` (with `target`, an agreement or a system).
  function can(what, target) {
    const me = state.me;
    if (!me) return false;
    switch (what) {
      case "transition":
        return (
          me.role === "operator" ||
          (me.role === "authority_admin" && target.authority_cvr === me.authority_cvr)
        );
      case "request":
        return me.role === "operator" || me.role === "supplier";
      case "configure":
      case "print-route":
      case "certificates":
        return me.role === "operator";
      case "systems":
        return true;
      case "register-system":
        return me.role === "operator" || me.role === "supplier";
      case "change-system":
        // Rotate, deactivate, activate: the operator, and a supplier for its own systems.
        return (
          me.role === "operator" ||
          (me.role === "supplier" &&
            Boolean(me.supplier_cvr) &&
            target.supplier_cvr === me.supplier_cvr)
        );
      case "runs":
      case "audit":
      case "messages":
      case "usage":
        return me.role === "operator" || me.role === "authority_admin";
      case "resend":
        return me.role === "operator";
      case "agreements":
        return true;
      default:
        return false;
    }
  }

  function showSignin() {
    $("app").hidden = true;
    $("who").hidden = true;
    $("signin").hidden = false;
    $("token-input").focus();
  }

  async function startSession() {
    const me = await api("me");
    state.me = me;
    $("greeting").textContent = `Signed in as ${me.name}, ${ROLE_TEXT[me.role]?.(me) ?? me.role}`;
    document.body.dataset.role = me.role;
    $("who").hidden = false;
    $("signin").hidden = true;
    fieldError("signin-error", "");
    fieldError("signin-info", "");
    $("app").hidden = false;
    applyRole();
    const wanted = location.hash.replace(/^#/, "");
    selectTab(Object.hasOwn(LOADERS, wanted) && can(wanted) ? wanted : "agreements", false);
  }

  function applyRole() {
    for (const tab of document.querySelectorAll('[role="tab"]')) {
      tab.hidden = !can(tab.dataset.panel);
    }
    const authorityAdmin = state.me.role === "authority_admin";
    $("filter-authority-field").hidden = authorityAdmin;
    $("audit-authority-field").hidden = authorityAdmin;
    $("msg-authority-field").hidden = authorityAdmin;
    $("usage-authority-field").hidden = authorityAdmin;
    $("request-section").hidden = !can("request");
    $("goto-request").hidden = !can("request");
    $("request-supplier-field").hidden = state.me.role !== "operator";
    $("request-supplier").required = state.me.role === "operator";
    // A supplier registers systems for itself: no supplier CVR field, a sentence instead.
    const registers = can("register-system");
    const operator = state.me.role === "operator";
    $("register-section").hidden = !registers;
    $("goto-register").hidden = !registers;
    $("register-supplier-field").hidden = !operator;
    $("register-supplier").required = operator;
    $("register-for").hidden = operator || !registers;
    $("register-for").textContent =
      state.me.role === "supplier"
        ? `The system is registered for your supplier CVR, ${state.me.supplier_cvr}.`
        : "";
  }

  function resetPage() {
    state.me = null;
    state.tab = null;
    state.consumerSystems = null;
    state.services.clear();
    state.changed.clear();
    state.detailUuid = null;
    state.systems = null;
    state.systemsChanged.clear();
    state.systemUuid = null;
    for (const key of Object.keys(state.seq)) state.seq[key] += 1;
    for (const id of [
      "agreements-body",
      "systems-body",
      "system-certs-body",
      "system-history-body",
      "certificates-body",
      "runs-body",
      "audit-body",
      "messages-body",
      "message-fields",
      "message-sections",
      "usage-body",
      "usage-chart",
    ]) {
      $(id).replaceChildren();
    }
    $("agreement-detail").hidden = true;
    $("system-detail").hidden = true;
    delete $("system-detail").dataset.system;
    $("agreement-filters").reset();
    $("audit-filters").reset();
    $("message-filters").reset();
    $("message-detail").hidden = true;
    state.messagePages = [null];
    state.messageFilters = {};
    state.messageNext = null;
    state.messageRef = null;
    $("request-form").reset();
    $("register-form").reset();
    $("rotate-form").reset();
    for (const id of ["register-error", "rotate-error"]) fieldError(id, "");
    $("notice").hidden = true;
    clearError();
    if ($("confirm-dialog").open) $("confirm-dialog").close();
    delete document.body.dataset.role;
  }

  function signOut(message, isError = false) {
    sessionStorage.removeItem(TOKEN_KEY);
    resetPage();
    fieldError("signin-error", isError ? message : "");
    fieldError("signin-info", isError ? "" : message);
    history.replaceState(null, "", location.pathname + location.search);
    showSignin();
  }

  async function onSignin(event) {
    event.preventDefault();
    const input = $("token-input");
    const token = input.value.trim();
    fieldError("signin-info", "");
    if (!token) {
      fieldError("signin-error", "Enter your access token.");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    const button = event.submitter || $("signin-form").querySelector("button");
    button.disabled = true;
    sessionStorage.setItem(TOKEN_KEY, token);
    try {
      await startSession();
      input.value = "";
      input.removeAttribute("aria-invalid");
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      state.me = null;
      const prefix =
        error instanceof ApiError && error.status === 401
          ? "The token was not accepted"
          : "Signing in failed";
      fieldError("signin-error", `${prefix}: ${errorText(error)}`);
      input.setAttribute("aria-invalid", "true");
      input.select();
      input.focus();
    } finally {
      button.disabled = false;
    }
  }

  // --- tabs -----------------------------------------------------------------------------------

  function visibleTabs() {
    return [...document.querySelectorAll('[role="tab"]')].filter((tab) => !tab.hidden);
  }

  function selectTab(name, focus) {
    if (!can(name)) return;
    state.tab = name;
    for (const tab of document.querySelectorAll('[role="tab"]')) {
      const selected = tab.dataset.panel === name;
      tab.setAttribute("aria-selected", selected ? "true" : "false");
      tab.tabIndex = selected ? 0 : -1;
      $(`panel-${tab.dataset.panel}`).hidden = !selected;
      if (selected && focus) tab.focus();
    }
    history.replaceState(null, "", `#${name}`);
    clearError();
    LOADERS[name]();
  }

  function onTabKey(event) {
    const tabs = visibleTabs();
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    let next = null;
    if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
    else if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
    else if (event.key === "Home") next = tabs[0];
    else if (event.key === "End") next = tabs[tabs.length - 1];
    if (next) {
      event.preventDefault();
      selectTab(next.dataset.panel, true);
    }
  }

  // An authority CVR typed into a filter: empty (no filter) or 8 digits. A bad value is
  // marked on its field and reported once, and the caller does not load.
  function authorityFilterValid(inputId, value) {
    const field = $(inputId);
    if (value && !/^[0-9]{8}$/.test(value)) {
      field.setAttribute("aria-invalid", "true");
      showError("Filter", new Error("the authority CVR is 8 digits"));
      return false;
    }
    field.removeAttribute("aria-invalid");
    return true;
  }

  // --- agreements ---------------------------------------------------------------------------

  function agreementFilters() {
    const filters = {
      status: $("filter-status").value,
      service: $("filter-service").value.trim(),
      authority_cvr: $("filter-authority").value.trim(),
    };
    if (state.me && state.me.role === "authority_admin") filters.authority_cvr = "";
    return filters;
  }

  function filtersChanged() {
    state.changed.clear();
    loadAgreements();
  }

  async function loadAgreements() {
    const table = $("agreements-table");
    const filters = agreementFilters();
    if (!authorityFilterValid("filter-authority", filters.authority_cvr)) return;
    const request = () => api("agreements", { query: filters });
    await loadTable("agreements", table, "Loading the agreements failed", request, (data) => {
      renderAgreements(data.agreements || [], filters);
    });
    if (can("request") && state.consumerSystems === null) loadConsumerSystems();
  }

  function sortAgreements(list) {
    return list.sort(
      (a, b) =>
        a.authority_cvr.localeCompare(b.authority_cvr) ||
        a.service.localeCompare(b.service) ||
        String(a.created_at).localeCompare(String(b.created_at)),
    );
  }

  function renderAgreements(agreements, filters) {
    const listed = new Set(agreements.map((a) => a.uuid));
    const extra = [...state.changed.values()].filter((a) => !listed.has(a.uuid));
    for (const a of agreements) {
      if (state.changed.has(a.uuid)) state.changed.set(a.uuid, a);
    }
    const rows = sortAgreements([...agreements]).map((a) => agreementRow(a, false));
    rows.push(...sortAgreements(extra).map((a) => agreementRow(a, true)));
    $("agreements-body").replaceChildren(...rows);
    $("agreements-empty").hidden = rows.length > 0;
    for (const a of agreements) state.services.add(a.service);
    $("service-list").replaceChildren(
      ...[...state.services].sort().map((service) => el("option", { value: service })),
    );
    const active = Object.entries(filters)
      .filter(([, value]) => value)
      .map(([key, value]) => `${key.replace("_", " ")} ${value}`);
    const count = agreements.length === 1 ? "1 agreement" : `${agreements.length} agreements`;
    let caption = active.length ? `${count} matching ${active.join(", ")}` : count;
    if (extra.length) caption += `; below them ${extra.length} changed just now`;
    $("agreements-caption").textContent = caption;
  }

  function actionButtons(agreement, where) {
    if (!can("transition", agreement)) return [];
    return (TRANSITIONS[agreement.status] || []).map((action) => {
      const spec = ACTIONS[action];
      return el("button", {
        type: "button",
        class: spec.danger ? "small danger" : "small",
        "data-testid": `action-${action}`,
        "data-action": action,
        "aria-label": `${spec.label} agreement ${describe(agreement)}`,
        text: spec.label,
        onclick: (event) => openConfirm(agreement, action, event.currentTarget, where),
      });
    });
  }

  function agreementRow(a, outside) {
    const system = a.consumer_system_name || a.consumer_system;
    const flags = el(
      "span",
      { class: "flags" },
      el("span", {
        class: a.configured ? "flag yes" : "flag no",
        "data-testid": "configured",
        text: a.configured ? "configured" : "not configured",
      }),
      el("span", {
        class: a.routable ? "flag yes" : "flag no",
        "data-testid": "routable",
        text: a.routable ? "routable" : "not routable",
      }),
      a.missing && a.missing.length
        ? el("span", { class: "hint", "data-testid": "missing", text: `missing: ${a.missing.join(", ")}` })
        : null,
    );
    const statusCell = el("td", {}, badge(a.status, "status", "status-badge"));
    if (outside) {
      statusCell.append(
        el("span", { class: "hint", text: "changed just now; outside the filters" }),
      );
    }
    return el(
      "tr",
      {
        "data-testid": "agreement-row",
        "data-uuid": a.uuid,
        "data-status": a.status,
        "data-authority": a.authority_cvr,
        class: outside || state.changed.has(a.uuid) ? "changed" : null,
      },
      el("td", { "data-testid": "cell-authority", text: a.authority_cvr }),
      el("td", { "data-testid": "cell-service", text: a.service }),
      el("td", { "data-testid": "cell-consumer", title: a.consumer_system, text: system }),
      el("td", { "data-testid": "cell-supplier", text: a.supplier }),
      statusCell,
      el("td", {}, flags),
      el("td", { "data-testid": "cell-sysids" }, sysidsList(a.sysids)),
      el("td", { class: "nowrap", "data-testid": "cell-valid-to" }, a.valid_to || "open-ended"),
      el(
        "td",
        { class: "actions" },
        el("button", {
          type: "button",
          class: "small secondary",
          "data-testid": "action-details",
          "aria-label": `Details and history of agreement ${describe(a)}`,
          text: "Details",
          onclick: () => openDetail(a.uuid),
        }),
        actionButtons(a, "row"),
      ),
    );
  }

  // --- the confirmation dialog ------------------------------------------------------------

  // Asks before one change. `run(reason)` makes it (the API call); after it succeeded the
  // dialog closes and `done(answer)` shows the result; when it failed the error is shown in
  // the dialog and `stale(error)` may reload what the change was about.
  function openDialog(spec) {
    state.pending = spec;
    state.opener = spec.opener;
    $("confirm-title").textContent = spec.title;
    $("confirm-text").textContent = spec.text;
    $("confirm-reason-label").textContent = spec.reasonRequired
      ? "Reason (required)"
      : "Reason (optional)";
    const reason = $("confirm-reason");
    reason.value = "";
    reason.required = spec.reasonRequired;
    reason.removeAttribute("aria-invalid");
    fieldError("confirm-error", "");
    const ok = $("confirm-ok");
    ok.textContent = spec.label;
    ok.className = spec.danger ? "danger" : "";
    ok.disabled = false;
    $("confirm-cancel").disabled = false;
    $("confirm-dialog").showModal();
    reason.focus();
  }

  function openConfirm(agreement, action, opener, where) {
    const spec = ACTIONS[action];
    const uuid = agreement.uuid;
    openDialog({
      title: `${spec.label} this agreement?`,
      text:
        `${spec.label} the agreement for ${describe(agreement)}: ` +
        `${agreement.status} → ${spec.to}. ${ACTION_NOTES[action]}`,
      label: spec.label,
      danger: spec.danger,
      reasonRequired: spec.reason,
      missingReason: `A reason is required to ${action} an agreement.`,
      opener,
      run: (reason) =>
        api(`agreements/${uuid}/${action}`, {
          method: "POST",
          body: reason ? { reason } : {},
        }),
      done: async (changed) => {
        state.changed.set(uuid, changed);
        notice(`${spec.done}: the agreement for ${describe(changed)} is now ${changed.status}.`);
        await loadAgreements();
        if (state.detailUuid === uuid) await loadDetail(uuid);
        const row = document.querySelector(`tr[data-uuid="${uuid}"]`);
        const target =
          where === "detail" && state.detailUuid === uuid
            ? $("detail-title")
            : row && row.querySelector("button");
        if (target) target.focus();
      },
      stale: (error) => {
        if (error.status === 404 || error.status === 409) loadAgreements();
      },
    });
  }

  async function onConfirm(event) {
    event.preventDefault();
    const pending = state.pending;
    if (!pending) return;
    const reasonInput = $("confirm-reason");
    const reason = reasonInput.value.trim();
    if (pending.reasonRequired && !reason) {
      reasonInput.setAttribute("aria-invalid", "true");
      fieldError("confirm-error", pending.missingReason);
      reasonInput.focus();
      return;
    }
    reasonInput.removeAttribute("aria-invalid");
    fieldError("confirm-error", "");
    $("confirm-ok").disabled = true;
    $("confirm-cancel").disabled = true;
    let answer;
    try {
      answer = await pending.run(reason);
    } catch (error) {
      if (!$("confirm-dialog").open || state.pending !== pending) return;
      fieldError("confirm-error", `${pending.label} failed: ${errorText(error)}`);
      $("confirm-ok").disabled = false;
      $("confirm-cancel").disabled = false;
      if (error instanceof ApiError && pending.stale) pending.stale(error);
      return;
    }
    if (state.pending !== pending) return;
    state.pending = null;
    $("confirm-dialog").close();
    clearError();
    await pending.done(answer);
  }

  function onDialogClose() {
    const opener = state.opener;
    state.pending = null;
    state.opener = null;
    if (opener && opener.isConnected && document.activeElement === document.body) {
      opener.focus();
    }
  }

  // --- one agreement: details, history, configuration --------------------------------------

  function openDetail(uuid) {
    state.detailUuid = uuid;
    loadDetail(uuid).then(() => {
      if (state.detailUuid === uuid && !$("agreement-detail").hidden) $("detail-title").focus();
    });
  }

  async function loadDetail(uuid) {
    const seq = ++state.seq.detail;
    try {
      const agreement = await api(`agreements/${uuid}`);
      if (seq !== state.seq.detail) return;
      renderDetail(agreement);
    } catch (error) {
      if (seq !== state.seq.detail) return;
      if (state.me) showError("Loading the agreement failed", error);
    }
  }

  function renderDetail(a) {
    const section = $("agreement-detail");
    section.dataset.uuid = a.uuid;
    $("detail-title").textContent = `Agreement: ${a.service} for authority ${a.authority_cvr}`;
    const fields = [
      ["UUID", a.uuid],
      ["Authority CVR", a.authority_cvr],
      ["Service", a.service],
      ["Consumer system", `${a.consumer_system_name || "?"} (${a.consumer_system})`],
      ["Supplier", a.supplier],
      ["Status", badge(a.status, "status", "detail-status")],
      ["Configured", a.configured ? "yes" : `no: missing ${(a.missing || []).join(", ") || "?"}`],
      ["Routable", a.routable ? "yes: calls pass" : "no: calls are refused"],
      ["Register certificate alias", dash(a.register_cert_alias)],
      ["SysIDs", sysidsText(a.sysids)],
      ["Valid from", dash(a.valid_from)],
      ["Valid to", a.valid_to || "open-ended"],
      ["Created", timeEl(a.created_at)],
      ["Updated", timeEl(a.updated_at)],
    ];
    $("detail-fields").replaceChildren(
      ...fields.map(([name, value]) =>
        el("div", {}, el("dt", { text: name }), el("dd", {}, value)),
      ),
    );
    $("detail-actions").replaceChildren(...actionButtons(a, "detail"));
    const history = [...(a.history || [])];
    $("history-body").replaceChildren(
      ...history.map((event) => {
        const details =
          event.details && Object.keys(event.details).length
            ? el("span", { class: "hint", text: JSON.stringify(event.details) })
            : null;
        return el(
          "tr",
          { "data-testid": "history-row" },
          el("td", {}, timeEl(event.at)),
          el("td", { text: event.actor }),
          el("td", {}, event.action, details),
          el("td", {
            text:
              event.from_status && event.from_status !== event.to_status
                ? `${event.from_status} → ${event.to_status}`
                : dash(event.to_status),
          }),
          el("td", { text: dash(event.reason) }),
        );
      }),
    );
    const form = $("configure-form");
    form.hidden = !can("configure");
    if (!form.hidden) {
      const lines = Object.entries(a.sysids || {}).map(([role, id]) => `${role} = ${id}`);
      $("configure-sysids").value = lines.join("\n");
      $("configure-sysids").rows = Math.max(3, lines.length + 1);
      $("configure-alias").value = a.register_cert_alias || "";
      $("configure-valid-to").value = a.valid_to || "";
      $("configure-reason").value = "";
      fieldError("configure-error", "");
    }
    showPrintRoute(a);
    section.hidden = false;
  }

  // The print route only exists for SF1600 (Print) agreements: sf1600 (NemSMS register,
  // client certificate) or sf1601 (Afsend post, token); other agreements hide the box.
  const PRINT_SERVICE = "sf1600";

  function showPrintRoute(a) {
    const box = $("print-route");
    box.hidden = a.service !== PRINT_SERVICE;
    $("print-route-form").hidden = true;
    if (box.hidden) return;
    $("print-route-current").textContent = "Loading the print route…";
    loadPrintRoute(a.uuid);
  }

  async function loadPrintRoute(uuid) {
    const seq = state.seq.detail;
    try {
      const route = await api(`agreements/${uuid}/print-route`);
      if (seq !== state.seq.detail || state.detailUuid !== uuid) return;
      renderPrintRoute(route);
    } catch (error) {
      if (seq !== state.seq.detail) return;
      if (state.detailUuid !== uuid) return;
      $("print-route-current").textContent =
        `The print route could not be loaded: ${errorText(error)}`;
    }
  }

  function renderPrintRoute(route) {
    const current = $("print-route-current");
    current.dataset.route = route.print_route;
    current.textContent =
      `${route.print_route} (credential: ${route.credential}; ` +
      `${route.chosen ? "chosen by an operator" : "the default"})`;
    const form = $("print-route-form");
    form.hidden = !can("print-route");
    if (!form.hidden) {
      $("print-route-select").value = route.print_route;
      $("print-route-reason").value = "";
      fieldError("print-route-error", "");
    }
  }

  async function onPrintRoute(event) {
    event.preventDefault();
    const uuid = state.detailUuid;
    if (!uuid) return;
    const body = { print_route: $("print-route-select").value };
    const reason = $("print-route-reason").value.trim();
    if (reason) body.reason = reason;
    const button = event.submitter || $("print-route-form").querySelector("button");
    button.disabled = true;
    fieldError("print-route-error", "");
    try {
      const changed = await api(`agreements/${uuid}/print-route`, { method: "PUT", body });
      notice(
        `Print route: the agreement ${uuid} now goes out via ${changed.print_route} ` +
          `(credential: ${changed.credential}).`,
      );
      // Reload so the history shows the change (and the route as the API now has it).
      await loadDetail(uuid);
    } catch (error) {
      fieldError("print-route-error", `Changing the print route failed: ${errorText(error)}`);
    } finally {
      button.disabled = false;
    }
  }

  function closeDetail() {
    const uuid = state.detailUuid;
    state.detailUuid = null;
    state.seq.detail += 1;
    $("agreement-detail").hidden = true;
    const row = uuid && document.querySelector(`tr[data-uuid="${uuid}"]`);
    const details = row && row.querySelector('[data-testid="action-details"]');
    if (details) details.focus();
  }

  function parseSysids(text) {
    const sysids = {};
    for (const [index, line] of text.split("\n").entries()) {
      if (!line.trim()) continue;
      const match = /^\s*([^=:\s]+)\s*[=:]\s*(\S+)\s*$/.exec(line);
      if (!match) throw new Error(`line ${index + 1} is not "role = SysID"`);
      sysids[match[1]] = match[2];
    }
    return sysids;
  }

  async function onConfigure(event) {
    event.preventDefault();
    const uuid = state.detailUuid;
    if (!uuid) return;
    let sysids;
    try {
      sysids = parseSysids($("configure-sysids").value);
    } catch (error) {
      fieldError("configure-error", `SysIDs: ${error.message}`);
      $("configure-sysids").focus();
      return;
    }
    const body = { sysids, valid_to: $("configure-valid-to").value || null };
    const alias = $("configure-alias").value.trim();
    if (alias) body.register_cert_alias = alias;
    const reason = $("configure-reason").value.trim();
    if (reason) body.reason = reason;
    const button = event.submitter || $("configure-form").querySelector("button");
    button.disabled = true;
    fieldError("configure-error", "");
    try {
      const changed = await api(`agreements/${uuid}/configuration`, { method: "PUT", body });
      state.changed.set(uuid, changed);
      notice(
        `Configured: the agreement for ${describe(changed)} is ` +
          `${changed.configured ? "configured" : "not yet fully configured"} and ` +
          `${changed.routable ? "routable" : "not routable"}.`,
      );
      await loadAgreements();
      await loadDetail(uuid);
    } catch (error) {
      fieldError("configure-error", `Saving failed: ${errorText(error)}`);
    } finally {
      button.disabled = false;
    }
  }

  // --- requesting an agreement ----------------------------------------------------------------

  // The systems an agreement can be requested for: the active ones the caller sees (a
  // supplier sees only its own). A deactivated system's calls are refused, so it is not offered.
  async function loadConsumerSystems() {
    state.consumerSystems = [];
    const select = $("request-consumer");
    const previous = select.value;
    try {
      const data = await api("consumer-systems");
      state.consumerSystems = (data.consumer_systems || []).filter((system) => system.active);
    } catch (error) {
      state.consumerSystems = null;
      if (state.me) showError("Loading the consumer systems failed", error);
      return;
    }
    const options = state.consumerSystems.map((system) =>
      el("option", {
        value: system.uuid,
        title: `${system.uuid}, supplier CVR ${system.supplier_cvr}`,
        text: system.callable ? system.name : `${system.name} (no certificate accepted now)`,
      }),
    );
    if (options.length === 0) {
      options.push(el("option", { value: "", text: "No active consumer system" }));
    } else if (options.length !== 1) {
      options.unshift(el("option", { value: "", text: "Choose a consumer system" }));
    }
    select.replaceChildren(...options);
    if (state.consumerSystems.some((system) => system.uuid === previous)) select.value = previous;
  }

  async function onRequest(event) {
    event.preventDefault();
    const form = $("request-form");
    for (const input of form.querySelectorAll("input, select")) {
      input.removeAttribute("aria-invalid");
    }
    const values = {
      authority_cvr: $("request-authority").value.trim(),
      service: $("request-service").value.trim(),
      consumer_system: $("request-consumer").value,
    };
    const problems = [];
    const invalid = (id, text) => {
      $(id).setAttribute("aria-invalid", "true");
      problems.push([id, text]);
    };
    if (!/^[0-9]{8}$/.test(values.authority_cvr)) {
      invalid("request-authority", "the authority CVR is 8 digits");
    }
    if (!values.service) invalid("request-service", "choose a service (e.g. sf2250)");
    if (!values.consumer_system) invalid("request-consumer", "choose a consumer system");
    if (state.me.role === "operator") {
      values.supplier = $("request-supplier").value.trim();
      if (!values.supplier) invalid("request-supplier", "name the supplier");
    }
    if (problems.length) {
      fieldError("request-error", `Please correct: ${problems.map((p) => p[1]).join("; ")}.`);
      $(problems[0][0]).focus();
      return;
    }
    const reason = $("request-reason").value.trim();
    if (reason) values.reason = reason;
    fieldError("request-error", "");
    const button = event.submitter || form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const created = await api("agreements", { method: "POST", body: values });
      state.changed.set(created.uuid, created);
      form.reset();
      if (state.consumerSystems && state.consumerSystems.length === 1) {
        $("request-consumer").value = state.consumerSystems[0].uuid;
      }
      notice(
        `Requested: the agreement for ${describe(created)} is ${created.status} ` +
          "and waits for the authority's approval.",
      );
      await loadAgreements();
    } catch (error) {
      fieldError("request-error", `The request failed: ${errorText(error)}`);
    } finally {
      button.disabled = false;
    }
  }

  // --- consumer systems -------------------------------------------------------------------

  function systemText(system) {
    return `${system.name} (supplier CVR ${system.supplier_cvr})`;
  }

  const shortFingerprint = (fingerprint) => `${String(fingerprint).slice(0, 16)}…`;

  // A change to a system: its row is marked, and the request form's picker is read again.
  function systemChanged(uuid) {
    state.systemsChanged.add(uuid);
    state.consumerSystems = null;
  }

  // The list, and the open system's details with it.
  async function refreshSystems() {
    const uuid = state.systemUuid;
    await Promise.all([loadSystems(), uuid ? loadSystem(uuid) : null]);
  }

  async function loadSystems() {
    const table = $("systems-table");
    const request = () => api("consumer-systems");
    await loadTable("systems", table, "Loading the consumer systems failed", request, (data) => {
      state.systems = data.consumer_systems || [];
      renderSystems(state.systems);
    });
  }

  function renderSystems(systems) {
    $("systems-body").replaceChildren(...systems.map(systemRow));
    $("systems-empty").hidden = systems.length > 0;
    const active = systems.filter((system) => system.active).length;
    const count = systems.length === 1 ? "1 consumer system" : `${systems.length} consumer systems`;
    $("systems-caption").textContent = systems.length
      ? `${count}, ${active} active`
      : "No consumer systems";
  }

  function systemState(system, testid) {
    return badge(system.active ? "active" : "deactivated", "system", testid);
  }

  function callableFlag(system, testid) {
    return el("span", {
      class: system.callable ? "flag yes" : "flag no",
      "data-testid": testid,
      text: system.callable ? "callable" : "not callable",
    });
  }

  function systemButtons(system, where) {
    if (!can("change-system", system)) return [];
    const action = system.active ? "deactivate" : "activate";
    const spec = SYSTEM_ACTIONS[action];
    return [
      el("button", {
        type: "button",
        class: spec.danger ? "small danger" : "small",
        "data-testid": `system-${action}`,
        "data-action": action,
        "aria-label": `${spec.label} consumer system ${systemText(system)}`,
        text: spec.label,
        onclick: (event) => openSystemConfirm(system, action, event.currentTarget, where),
      }),
    ];
  }

  function systemRow(system) {
    const certificates = system.certificates || [];
    const accepted = certificates.filter((c) => c.accepted_now);
    // When an accepted certificate stops being accepted (a rotation's overlap), say when.
    const ends = accepted
      .map((c) => c.accepted_until)
      .filter(Boolean)
      .sort((a, b) => new Date(a).getTime() - new Date(b).getTime());
    const stateCell = el("td", {}, systemState(system, "system-state"));
    if (!system.active && system.deactivated_at) {
      stateCell.append(el("span", { class: "hint" }, "since ", timeEl(system.deactivated_at)));
    }
    return el(
      "tr",
      {
        "data-testid": "system-row",
        "data-system": system.uuid,
        "data-active": String(system.active),
        class: state.systemsChanged.has(system.uuid) ? "changed" : null,
      },
      el(
        "th",
        { scope: "row" },
        el("span", { "data-testid": "system-name", text: system.name }),
        el("span", { class: "hint", text: system.uuid }),
      ),
      el("td", { "data-testid": "system-supplier", text: system.supplier_cvr }),
      stateCell,
      el(
        "td",
        {},
        el("span", {
          "data-testid": "system-certs",
          text: `${accepted.length} / ${certificates.length}`,
        }),
        ends.length
          ? el("span", { class: "hint" }, `${ends.length} accepted until `, timeEl(ends[0]))
          : null,
      ),
      el("td", {}, callableFlag(system, "system-callable")),
      el(
        "td",
        { class: "actions" },
        el("button", {
          type: "button",
          class: "small secondary",
          "data-testid": "system-details",
          "aria-label": `Details and history of consumer system ${systemText(system)}`,
          text: "Details",
          onclick: () => openSystem(system.uuid),
        }),
        systemButtons(system, "row"),
      ),
    );
  }

  function openSystemConfirm(system, action, opener, where) {
    const spec = SYSTEM_ACTIONS[action];
    const uuid = system.uuid;
    openDialog({
      title: `${spec.label} this consumer system?`,
      text: `${spec.label} consumer system ${systemText(system)}. ${spec.note}`,
      label: spec.label,
      danger: spec.danger,
      reasonRequired: spec.reason,
      missingReason: `A reason is required to ${action} a consumer system.`,
      opener,
      run: (reason) =>
        api(`consumer-systems/${uuid}/${action}`, {
          method: "POST",
          body: reason ? { reason } : {},
        }),
      done: async (changed) => {
        systemChanged(uuid);
        notice(
          `${spec.done}: consumer system ${systemText(changed)} is now ` +
            `${changed.active ? "active" : "deactivated"} and ` +
            `${changed.callable ? "callable" : "not callable"}.`,
        );
        await refreshSystems();
        const row = document.querySelector(`tr[data-system="${uuid}"]`);
        const target =
          where === "detail" && state.systemUuid === uuid
            ? $("system-title")
            : row && row.querySelector("button");
        if (target) target.focus();
      },
      // Changed meanwhile (by someone else, or in another tab): show how it is now.
      stale: (error) => {
        if ([400, 404, 409].includes(error.status)) refreshSystems();
      },
    });
  }

  // --- one consumer system: certificates, history, rotation ------------------------------

  function openSystem(uuid) {
    state.systemUuid = uuid;
    return loadSystem(uuid).then(() => {
      if (state.systemUuid === uuid && !$("system-detail").hidden) $("system-title").focus();
    });
  }

  async function loadSystem(uuid) {
    const seq = ++state.seq.system;
    try {
      const system = await api(`consumer-systems/${uuid}`);
      if (seq !== state.seq.system) return;
      renderSystem(system);
    } catch (error) {
      if (seq !== state.seq.system) return;
      if (state.me) showError("Loading the consumer system failed", error);
    }
  }

  function renderSystem(system) {
    const section = $("system-detail");
    const another = section.dataset.system !== system.uuid;
    section.dataset.system = system.uuid;
    section.dataset.active = String(system.active);
    $("system-title").textContent = `Consumer system: ${system.name}`;
    const certificates = system.certificates || [];
    const accepted = certificates.filter((c) => c.accepted_now).length;
    let callable = "yes: calls with an accepted certificate pass (given an agreement)";
    if (!system.active) callable = "no: the system is deactivated";
    else if (!system.callable) callable = "no: none of its certificates is accepted now";
    const fields = [
      ["UUID", system.uuid],
      ["Name", system.name],
      ["Supplier CVR", system.supplier_cvr],
      ["State", systemState(system, "system-detail-state")],
      ["Callable", el("span", { "data-testid": "system-detail-callable", text: callable })],
      ["Certificates accepted now", `${accepted} of ${certificates.length}`],
      ["Registered", timeEl(system.created_at)],
      ["Deactivated", system.active ? "—" : timeEl(system.deactivated_at)],
    ];
    $("system-fields").replaceChildren(
      ...fields.map(([name, value]) =>
        el("div", {}, el("dt", { text: name }), el("dd", {}, value)),
      ),
    );
    $("system-actions").replaceChildren(...systemButtons(system, "detail"));
    $("system-certs-body").replaceChildren(...certificates.map(systemCertificateRow));
    $("system-history-body").replaceChildren(...(system.history || []).map(systemEventRow));
    const form = $("rotate-form");
    form.hidden = !can("change-system", system);
    if (another) {
      form.reset();
      syncRotateOverlap();
      fieldError("rotate-error", "");
    }
    section.hidden = false;
  }

  function systemCertificateRow(c) {
    return el(
      "tr",
      {
        "data-testid": "system-cert-row",
        "data-fingerprint": c.fingerprint_sha256,
        "data-accepted": String(c.accepted_now),
        class: c.accepted_now ? null : "row-retired",
      },
      el(
        "td",
        {},
        el("code", {
          class: "fingerprint",
          "data-testid": "cert-fingerprint",
          text: c.fingerprint_sha256,
        }),
      ),
      el(
        "td",
        { class: "subject" },
        el("span", { "data-testid": "cert-subject", text: c.subject }),
        el("span", { class: "hint", "data-testid": "cert-issuer", text: `issuer ${c.issuer}` }),
      ),
      el(
        "td",
        { class: "nowrap", "data-testid": "cert-validity" },
        "from ",
        timeEl(c.not_before),
        el("br"),
        "to ",
        timeEl(c.not_after),
      ),
      el(
        "td",
        { class: "nowrap" },
        "from ",
        el("span", { "data-testid": "cert-accepted-from" }, timeEl(c.accepted_from)),
        el("br"),
        "until ",
        el(
          "span",
          { "data-testid": "cert-accepted-until" },
          c.accepted_until ? timeEl(c.accepted_until) : "no end",
        ),
      ),
      el(
        "td",
        {},
        el("span", {
          class: c.accepted_now ? "flag yes" : "flag no",
          "data-testid": "cert-accepted-now",
          text: c.accepted_now ? "accepted" : "not accepted",
        }),
      ),
    );
  }

  // An event's details (the certificate, the retired fingerprints, ...) as readable lines.
  function detailText(value) {
    if (value === null || value === undefined || value === "") return "—";
    if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value)) {
      return timeText(value);
    }
    if (Array.isArray(value)) return value.length ? value.map(detailText).join(", ") : "none";
    if (typeof value === "object") {
      return Object.entries(value)
        .map(([key, inner]) => `${key.replace(/_/g, " ")} ${detailText(inner)}`)
        .join("; ");
    }
    return String(value);
  }

  function systemEventRow(event) {
    const details = Object.entries(event.details || {}).map(([key, value]) =>
      el("span", {
        class: "event-detail",
        text: `${key.replace(/_/g, " ")}: ${detailText(value)}`,
      }),
    );
    return el(
      "tr",
      { "data-testid": "system-history-row", "data-action": event.action },
      el("td", {}, timeEl(event.at)),
      el("td", { text: event.actor }),
      el("td", { "data-testid": "system-history-action", text: event.action }),
      el("td", { "data-testid": "system-history-reason", text: dash(event.reason) }),
      el("td", { class: "detail" }, details.length ? details : "—"),
    );
  }

  function closeSystem() {
    const uuid = state.systemUuid;
    state.systemUuid = null;
    state.seq.system += 1;
    $("system-detail").hidden = true;
    const row = uuid && document.querySelector(`tr[data-system="${uuid}"]`);
    const details = row && row.querySelector('[data-testid="system-details"]');
    if (details) details.focus();
  }

  // --- registering a system and adding certificates ---------------------------------------

  // What is wrong with pasted certificate text, before it is sent; null when it looks right.
  // The platform checks the rest (SP-608: exactly one certificate, not expired).
  function pemProblem(text) {
    if (!text) return "paste the certificate (PEM) or choose its file";
    if (/PRIVATE KEY-----/.test(text)) {
      return "the text holds a private key: give the certificate only, never its key";
    }
    if (!/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/.test(text)) {
      return "the certificate must be PEM text (-----BEGIN CERTIFICATE----- ...)";
    }
    return null;
  }

  // An API error in a form: the code apart, so it can be looked up (docs/faults.md).
  function formError(id, prefix, error) {
    const box = $(id);
    if (error instanceof ApiError) {
      box.replaceChildren(
        `${prefix}: `,
        el("code", { "data-testid": `${id}-code`, text: error.code }),
        ` ${error.text}`,
        error.status ? ` (HTTP ${error.status})` : "",
      );
    } else {
      box.textContent = `${prefix}: ${errorText(error)}`;
    }
    box.hidden = false;
  }

  // Reads a chosen .pem/.crt file into the form's certificate field (nothing is uploaded yet).
  function readPemFile(input, textareaId, errorId) {
    const file = input.files && input.files[0];
    if (!file) return;
    const refuse = (text) => {
      fieldError(errorId, `${file.name}: ${text}`);
      input.value = "";
      input.focus();
    };
    if (file.size > MAX_PEM_BYTES) {
      refuse("the file is over 64 KiB, so it is not one certificate");
      return;
    }
    const reader = new FileReader();
    reader.addEventListener("load", () => {
      const text = String(reader.result || "").trim();
      const problem = pemProblem(text);
      if (problem) {
        refuse(
          problem.startsWith("the certificate must be PEM")
            ? "not a PEM certificate (a binary DER file? " +
                "convert it: openssl x509 -inform der -in FILE -out FILE.pem)"
            : problem,
        );
        return;
      }
      const area = $(textareaId);
      area.value = text;
      area.removeAttribute("aria-invalid");
      fieldError(errorId, "");
    });
    reader.addEventListener("error", () => {
      refuse(`the file could not be read (${reader.error ? reader.error.message : "unknown"})`);
    });
    reader.readAsText(file);
  }

  function markInvalid(form, problems) {
    for (const input of form.querySelectorAll("input, select, textarea")) {
      input.removeAttribute("aria-invalid");
    }
    for (const [id] of problems) $(id).setAttribute("aria-invalid", "true");
  }

  async function onRegister(event) {
    event.preventDefault();
    const form = $("register-form");
    const body = {
      name: $("register-name").value.trim(),
      certificate_pem: $("register-pem").value.trim(),
    };
    const problems = [];
    if (!body.name) problems.push(["register-name", "name the system"]);
    if (state.me.role === "operator") {
      body.supplier_cvr = $("register-supplier").value.trim();
      if (!/^[0-9]{8}$/.test(body.supplier_cvr)) {
        problems.push(["register-supplier", "the supplier CVR is 8 digits"]);
      }
    }
    const pem = pemProblem(body.certificate_pem);
    if (pem) problems.push(["register-pem", pem]);
    markInvalid(form, problems);
    if (problems.length) {
      fieldError("register-error", `Please correct: ${problems.map((p) => p[1]).join("; ")}.`);
      $(problems[0][0]).focus();
      return;
    }
    const reason = $("register-reason").value.trim();
    if (reason) body.reason = reason;
    fieldError("register-error", "");
    const button = event.submitter || form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const created = await api("consumer-systems", { method: "POST", body });
      systemChanged(created.uuid);
      form.reset();
      const certificate = (created.certificates || [])[0];
      const which = certificate
        ? ` with certificate ${shortFingerprint(certificate.fingerprint_sha256)}`
        : "";
      notice(
        `Registered: consumer system ${systemText(created)}${which}; it is ` +
          `${created.callable ? "callable" : "not callable"}. ` +
          "Its calls pass once it has an approved agreement.",
      );
      await loadSystems();
      await openSystem(created.uuid);
    } catch (error) {
      formError("register-error", "Registering failed", error);
      if (error instanceof ApiError && error.status === 409) {
        $("register-pem").setAttribute("aria-invalid", "true");
      }
    } finally {
      button.disabled = false;
    }
  }

  // "Keep the current certificates" is no rotation, so there is no overlap to give.
  function syncRotateOverlap() {
    const keep = $("rotate-keep").checked;
    $("rotate-overlap").disabled = keep;
    if (keep) $("rotate-overlap").removeAttribute("aria-invalid");
  }

  function rotationNotice(system, keep, days) {
    const certificates = system.certificates || [];
    const newest = certificates[0];
    let text = `Certificate added to consumer system ${systemText(system)}`;
    if (newest) text += `: ${shortFingerprint(newest.fingerprint_sha256)} is accepted from now`;
    const others = certificates.slice(1).filter((c) => c.accepted_now);
    if (keep) {
      const n = others.length;
      if (n) text += `; ${n === 1 ? "the other one stays" : `the ${n} others stay`} accepted`;
    } else if (days === 0) {
      text += "; the previous certificates are no longer accepted";
    } else {
      const ends = others
        .map((c) => c.accepted_until)
        .filter(Boolean)
        .sort((a, b) => new Date(b).getTime() - new Date(a).getTime());
      if (ends.length) text += `; the previous ones are accepted until ${timeText(ends[0])}`;
    }
    return `${text}.`;
  }

  async function onRotate(event) {
    event.preventDefault();
    const uuid = state.systemUuid;
    if (!uuid) return;
    const form = $("rotate-form");
    const keep = $("rotate-keep").checked;
    const body = { certificate_pem: $("rotate-pem").value.trim(), keep_current: keep };
    const problems = [];
    const pem = pemProblem(body.certificate_pem);
    if (pem) problems.push(["rotate-pem", pem]);
    let days = null;
    if (!keep) {
      const text = $("rotate-overlap").value.trim();
      days = Number(text);
      if (!text || !Number.isInteger(days) || days < 0 || days > 3650) {
        problems.push(["rotate-overlap", "the overlap is 0 to 3650 whole days"]);
      } else {
        body.overlap_days = days;
      }
    }
    markInvalid(form, problems);
    if (problems.length) {
      fieldError("rotate-error", `Please correct: ${problems.map((p) => p[1]).join("; ")}.`);
      $(problems[0][0]).focus();
      return;
    }
    const reason = $("rotate-reason").value.trim();
    if (reason) body.reason = reason;
    fieldError("rotate-error", "");
    const button = event.submitter || form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const changed = await api(`consumer-systems/${uuid}/certificates`, {
        method: "POST",
        body,
      });
      systemChanged(uuid);
      form.reset();
      syncRotateOverlap();
      notice(rotationNotice(changed, keep, days));
      await refreshSystems();
    } catch (error) {
      formError("rotate-error", "Adding the certificate failed", error);
      if (error instanceof ApiError && error.status === 404) refreshSystems();
    } finally {
      button.disabled = false;
    }
  }

  // --- certificates ---------------------------------------------------------------------------

  async function loadCertificates() {
    const table = $("certificates-table");
    const request = () => api("certificates");
    await loadTable("certificates", table, "Loading the certificates failed", request, (data) => {
      const certificates = [...(data.certificates || [])].sort(
        (a, b) => (a.days_to_expiry ?? Infinity) - (b.days_to_expiry ?? Infinity),
      );
      $("certificates-body").replaceChildren(...certificates.map(certificateRow));
      $("certificates-empty").hidden = certificates.length > 0;
    });
  }

  function certificateRow(c) {
    const days = c.days_to_expiry;
    const expired = c.status === "expired" || (days !== null && days !== undefined && days < 0);
    const expiring = !expired && (c.status === "expiring" || (days !== null && days <= 30));
    let daysText = "—";
    if (days !== null && days !== undefined) {
      daysText = days < 0 ? `${days} (expired ${-days} days ago)` : String(days);
    }
    return el(
      "tr",
      {
        "data-testid": "certificate-row",
        "data-alias": c.alias,
        "data-status": c.status,
        class: expired ? "row-expired" : expiring ? "row-expiring" : null,
      },
      el("th", { scope: "row", "data-testid": "cert-alias", text: c.alias }),
      el(
        "td",
        { class: "subject", title: c.issuer ? `Issuer: ${c.issuer}` : null },
        dash(c.subject),
      ),
      el("td", { "data-testid": "cert-not-after" }, timeEl(c.not_after)),
      el("td", { class: "number", "data-testid": "cert-days", text: daysText }),
      el(
        "td",
        {},
        badge(c.status, "cert", "cert-status"),
        c.problem ? el("span", { class: "hint", text: c.problem }) : null,
      ),
    );
  }

  // --- nightly runs ----------------------------------------------------------------------------

  async function loadRuns() {
    const table = $("runs-table");
    const request = () => api("subscriptions/runs", { query: { limit: $("runs-limit").value } });
    await loadTable("runs", table, "Loading the nightly runs failed", request, (data) => {
      const outbox = data.outbox || {};
      for (const key of ["pending", "delivered", "failing"]) {
        const cell = $(`outbox-${key}`);
        cell.textContent = dash(outbox[key]);
        cell.classList.toggle("alert", key === "failing" && outbox[key] > 0);
      }
      const runs = data.runs || [];
      $("runs-body").replaceChildren(
        ...runs.map((run) =>
          el(
            "tr",
            { "data-testid": "run-row", "data-authority": run.authority_cvr },
            el("th", { scope: "row", text: run.authority_cvr }),
            el("td", { text: run.list_date }),
            el("td", {}, badge(run.state, "run", "run-state")),
            el("td", { class: "number", text: dash(run.entries) }),
            el("td", { class: "number", text: dash(run.subscribed) }),
            el("td", { class: "number", text: dash(run.unsubscribed) }),
            el("td", {}, timeEl(run.completed_at)),
          ),
        ),
      );
      $("runs-empty").hidden = runs.length > 0;
    });
  }

  // --- audit ------------------------------------------------------------------------------------

  async function loadAudit() {
    const table = $("audit-table");
    const authority = state.me.role === "operator" ? $("audit-authority").value.trim() : "";
    if (!authorityFilterValid("audit-authority", authority)) return;
    const request = () => api("audit", {
      query: { limit: $("audit-limit").value, authority_cvr: authority },
    });
    await loadTable("audit", table, "Loading the audit records failed", request, (data) => {
      const records = [...(data.records || [])].sort(
        (a, b) => new Date(b.at).getTime() - new Date(a.at).getTime(),
      );
      $("audit-body").replaceChildren(...records.map(auditRow));
      $("audit-empty").hidden = records.length > 0;
    });
  }

  function auditRow(r) {
    const outcome = el("td", {}, badge(r.outcome, "outcome", "audit-outcome"));
    if (r.error_code) outcome.append(" ", el("code", { text: r.error_code }));
    if (r.upstream_status) {
      outcome.append(el("span", { class: "hint", text: `upstream ${r.upstream_status}` }));
    }
    const latency =
      r.latency_ms === null || r.latency_ms === undefined ? "—" : `${r.latency_ms} ms`;
    return el(
      "tr",
      { "data-testid": "audit-row", "data-authority": r.authority_cvr || "" },
      el("td", {}, timeEl(r.at)),
      el("td", { text: dash(r.authority_cvr) }),
      el("td", { text: dash(r.service) }),
      el("td", { text: dash(r.operation) }),
      outcome,
      el("td", { text: dash(r.subject) }),
      el("td", { text: dash(r.sysid) }),
      el("td", { class: "number", text: latency }),
      el(
        "td",
        { class: "detail" },
        dash(r.detail),
        r.message_id ? el("span", { class: "hint", text: r.message_id }) : null,
      ),
    );
  }


  // --- the message log --------------------------------------------------------------------

  const SOURCE_TEXT = { call: "call", oots: "OOTS request", outbox: "nightly delivery" };

  function messageFilters() {
    const filters = {};
    for (const field of $("message-filters").elements) {
      if (!field.name || field.name === "limit") continue;
      const value = field.value.trim();
      if (!value) continue;
      if (field.name === "authority_cvr" && state.me.role !== "operator") continue;
      filters[field.name] = value;
    }
    return filters;
  }

  function searchMessages() {
    const filters = messageFilters();
    if (!authorityFilterValid("msg-authority", filters.authority_cvr)) return;
    state.messageFilters = filters;
    state.messagePages = [null];
    loadMessages();
  }

  async function loadMessages() {
    const table = $("messages-table");
    const after = state.messagePages[state.messagePages.length - 1];
    const request = () => api("messages", {
      query: { ...state.messageFilters, limit: $("msg-limit").value, after },
    });
    await loadTable("messages", table, "Loading the message log failed", request, (data) => {
      const messages = data.messages || [];
      $("messages-body").replaceChildren(...messages.map(messageRow));
      $("messages-empty").hidden = messages.length > 0;
      state.messageNext = data.next || null;
      const page = state.messagePages.length;
      $("msg-page").textContent = `Page ${page}`;
      $("msg-newer").disabled = page <= 1;
      $("msg-older").disabled = !state.messageNext;
      const filtered = Object.keys(state.messageFilters).length;
      $("messages-caption").textContent =
        `Newest first${filtered ? ", filtered" : ""}: page ${page}, ${messages.length} messages`;
    });
  }

  function olderMessages() {
    if (!state.messageNext) return;
    state.messagePages.push(state.messageNext);
    loadMessages();
  }

  function newerMessages() {
    if (state.messagePages.length <= 1) return;
    state.messagePages.pop();
    loadMessages();
  }

  function messageRow(m) {
    const outcome = el("td", {}, badge(m.outcome, "outcome", "message-outcome"));
    if (m.error_code) outcome.append(" ", el("code", { text: m.error_code }));
    if (m.state && m.state !== m.outcome) {
      outcome.append(el("span", { class: "hint", text: m.state }));
    }
    return el(
      "tr",
      {
        "data-testid": "message-row",
        "data-ref": m.ref,
        "data-outcome": m.outcome,
        "data-authority": m.authority_cvr || "",
      },
      el("td", {}, timeEl(m.at)),
      el("td", { text: SOURCE_TEXT[m.source] || m.source }),
      el("td", { text: dash(m.authority_cvr) }),
      el("td", {}, m.service, m.operation ? el("span", { class: "hint", text: m.operation }) : null),
      outcome,
      el("td", { class: "nowrap", text: dash(m.subject) }),
      el(
        "td",
        { class: "detail" },
        dash(m.message_id),
        m.conversation_id ? el("span", { class: "hint", text: m.conversation_id }) : null,
      ),
      el(
        "td",
        { class: "actions" },
        el("button", {
          type: "button",
          class: "small secondary",
          "data-testid": "message-details",
          "aria-label": `Details of ${SOURCE_TEXT[m.source] || m.source} ${m.ref}`,
          text: "Details",
          onclick: () => openMessage(m.ref),
        }),
      ),
    );
  }

  function messagePath(ref) {
    const at = ref.indexOf(":");
    return `messages/${encodeURIComponent(ref.slice(0, at))}/${encodeURIComponent(ref.slice(at + 1))}`;
  }

  async function openMessage(ref) {
    state.messageRef = ref;
    const seq = ++state.seq.message;
    try {
      const detail = await api(messagePath(ref));
      if (seq !== state.seq.message) return;
      renderMessage(detail);
      $("message-title").focus();
    } catch (error) {
      if (seq !== state.seq.message) return;
      if (state.me) showError("Loading the message failed", error);
    }
  }

  function cellText(value) {
    if (value === null || value === undefined || value === "") return "—";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  function renderMessage(detail) {
    const m = detail.message;
    const section = $("message-detail");
    section.dataset.ref = m.ref;
    $("message-title").textContent =
      `${SOURCE_TEXT[m.source] || m.source} ${m.ref}: ${m.service}` +
      `${m.operation ? ` ${m.operation}` : ""}`;
    const fields = [
      ["When", timeEl(m.at)],
      ["Authority CVR", dash(m.authority_cvr)],
      ["Outcome", badge(m.outcome, "outcome", "message-detail-outcome")],
      ["State", dash(m.state)],
      ["Error code", dash(m.error_code)],
      ["MessageID", dash(m.message_id)],
      ["Conversation id", dash(m.conversation_id)],
      ["Subject", dash(m.subject)],
      ["Latency", m.latency_ms === null || m.latency_ms === undefined ? "—" : `${m.latency_ms} ms`],
      ["Detail", dash(m.detail)],
    ];
    $("message-fields").replaceChildren(
      ...fields.map(([name, value]) =>
        el("div", {}, el("dt", { text: name }), el("dd", {}, value)),
      ),
    );
    $("message-sections").replaceChildren(
      ...(detail.sections || []).map((part) => {
        const columns = [...new Set(part.rows.flatMap((row) => Object.keys(row)))];
        const body = part.rows.map((row) =>
          el(
            "tr",
            { "data-testid": "section-row" },
            ...columns.map((column) => {
              const value = row[column];
              if (column === "ref" && typeof value === "string") {
                return el(
                  "td",
                  {},
                  el("button", {
                    type: "button",
                    class: "link",
                    text: value,
                    onclick: () => openMessage(value),
                  }),
                );
              }
              return el("td", { class: "detail", text: cellText(value) });
            }),
          ),
        );
        return el(
          "div",
          { class: "message-section", "data-testid": "message-section", "data-title": part.title },
          el("h4", { text: part.title }),
          part.rows.length
            ? el(
                "div",
                { class: "table-wrap" },
                el(
                  "table",
                  {},
                  el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", { scope: "col", text: c })))),
                  el("tbody", {}, ...body),
                ),
              )
            : el("p", { class: "empty", text: "Nothing." }),
        );
      }),
    );
    const resend = $("message-resend");
    resend.hidden = !(detail.resendable && can("resend"));
    resend.onclick = () => openResend(m, resend);
    section.hidden = false;
  }

  function openResend(m, opener) {
    const what = SOURCE_TEXT[m.source] || m.source;
    openDialog({
      title: `Resend this ${what}?`,
      text:
        m.source === "oots"
          ? `The OOTS request ${m.ref} of authority ${m.authority_cvr} is sent again as a new ` +
            "AS4 message in the same conversation."
          : `The ${what} ${m.ref} of authority ${dash(m.authority_cvr)} is handed to the ` +
            "distributor again.",
      label: "Resend",
      danger: false,
      reasonRequired: false,
      missingReason: "",
      opener,
      run: () => api(`${messagePath(m.ref)}/resend`, { method: "POST", body: {} }),
      done: async (answer) => {
        notice(`${answer.sent ? "Resent" : "Not resent"}: ${answer.text}`);
        renderMessage(answer);
        await loadMessages();
        $("message-title").focus();
      },
      stale: () => loadMessages(),
    });
  }

  function closeMessage() {
    state.messageRef = null;
    $("message-detail").hidden = true;
    const row = document.querySelector(`tr[data-testid="message-row"] button`);
    if (row) row.focus();
  }

  // --- usage ----------------------------------------------------------------------------------

  async function loadUsage() {
    const table = $("usage-table");
    const authority = state.me.role === "operator" ? $("usage-authority").value.trim() : "";
    if (!authorityFilterValid("usage-authority", authority)) return;
    const request = () => api("usage", { query: { days: 30, authority_cvr: authority } });
    await loadTable("usage", table, "Loading the usage failed", request, (data) => {
      const rows = data.rows || [];
      $("usage-body").replaceChildren(
        ...rows.map((r) =>
          el(
            "tr",
            { "data-testid": "usage-row", "data-authority": r.authority_cvr || "" },
            el("td", { class: "nowrap", text: r.day }),
            el("td", { text: dash(r.authority_cvr) }),
            el("td", { text: r.service }),
            el("td", { class: "number", text: r.calls }),
            el("td", { class: "number", text: r.faults }),
            el("td", { class: "number", text: `${(r.error_rate * 100).toFixed(1)} %` }),
            el("td", { class: "number", text: `${r.p95_ms} ms` }),
          ),
        ),
      );
      $("usage-empty").hidden = rows.length > 0;
      drawUsage(data.days || []);
    });
  }

  // One bar per day, its height the day's calls, the failed part in red. Heights are set
  // through the CSSOM (allowed by the page's CSP, unlike inline style attributes).
  function drawUsage(days) {
    const most = Math.max(1, ...days.map((d) => d.calls));
    $("usage-chart").replaceChildren(
      ...days.map((d) => {
        const bar = el("div", {
          class: "bar",
          "data-testid": "usage-bar",
          "data-calls": d.calls,
          title: `${d.day}: ${d.calls} calls, ${d.faults} failed`,
        });
        bar.style.height = `${(100 * d.calls) / most}%`;
        const failed = el("div", { class: "bar-fault" });
        failed.style.height = d.calls ? `${(100 * d.faults) / d.calls}%` : "0";
        bar.append(failed);
        return el("div", { class: "bar-slot" }, bar);
      }),
    );
    $("usage-chart").setAttribute(
      "aria-label",
      `Calls per day, ${days.length} days, at most ${most} a day`,
    );
  }

  const LOADERS = {
    agreements: loadAgreements,
    systems: refreshSystems,
    certificates: loadCertificates,
    runs: loadRuns,
    messages: loadMessages,
    usage: loadUsage,
    audit: loadAudit,
  };

  // --- wiring ---------------------------------------------------------------------------------

  function init() {
    $("signin-form").addEventListener("submit", onSignin);
    $("token-input").addEventListener("input", (event) => {
      event.target.removeAttribute("aria-invalid");
    });
    $("sign-out").addEventListener("click", () => signOut("You are signed out."));
    $("tabs").addEventListener("keydown", onTabKey);
    for (const tab of document.querySelectorAll('[role="tab"]')) {
      tab.addEventListener("click", () => selectTab(tab.dataset.panel, true));
    }
    for (const button of document.querySelectorAll("[data-reload]")) {
      button.addEventListener("click", () => LOADERS[button.dataset.reload]());
    }
    $("agreement-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      filtersChanged();
    });
    $("filter-status").addEventListener("change", filtersChanged);
    $("filter-clear").addEventListener("click", () => {
      $("agreement-filters").reset();
      filtersChanged();
    });
    $("detail-close").addEventListener("click", closeDetail);
    $("goto-request").addEventListener("click", () => {
      $("request-section").scrollIntoView({ block: "start" });
      $("request-authority").focus();
    });
    $("configure-form").addEventListener("submit", onConfigure);
    $("print-route-form").addEventListener("submit", onPrintRoute);
    $("system-close").addEventListener("click", closeSystem);
    $("goto-register").addEventListener("click", () => {
      $("register-section").scrollIntoView({ block: "start" });
      $("register-name").focus();
    });
    $("register-form").addEventListener("submit", onRegister);
    $("register-file").addEventListener("change", (event) =>
      readPemFile(event.target, "register-pem", "register-error"),
    );
    $("rotate-form").addEventListener("submit", onRotate);
    $("rotate-file").addEventListener("change", (event) =>
      readPemFile(event.target, "rotate-pem", "rotate-error"),
    );
    $("rotate-keep").addEventListener("change", syncRotateOverlap);
    $("request-form").addEventListener("submit", onRequest);
    $("confirm-form").addEventListener("submit", onConfirm);
    $("confirm-cancel").addEventListener("click", () => $("confirm-dialog").close());
    $("confirm-dialog").addEventListener("cancel", (event) => {
      if ($("confirm-ok").disabled) event.preventDefault();
    });
    $("confirm-dialog").addEventListener("close", onDialogClose);
    $("runs-limit").addEventListener("change", loadRuns);
    $("audit-limit").addEventListener("change", loadAudit);
    $("audit-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      loadAudit();
    });
    $("message-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      searchMessages();
    });
    $("msg-clear").addEventListener("click", () => {
      $("message-filters").reset();
      searchMessages();
    });
    $("msg-limit").addEventListener("change", searchMessages);
    $("msg-older").addEventListener("click", olderMessages);
    $("msg-newer").addEventListener("click", newerMessages);
    $("message-close").addEventListener("click", closeMessage);

    if (sessionStorage.getItem(TOKEN_KEY)) {
      startSession().catch((error) => {
        const ended = error instanceof ApiError && error.status === 401;
        const prefix = ended ? "Please sign in again" : "Signing in failed";
        signOut(`${prefix}: ${errorText(error)}`, true);
      });
    } else {
      showSignin();
    }
  }

  init();
})();

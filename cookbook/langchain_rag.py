"""A LangChain RAG chain on local models: AdamEmbeddings + InMemoryVectorStore + ChatAdam."""

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from adam_integrations.langchain import AdamEmbeddings, ChatAdam

documents = [
    Document(page_content="The secret code word of the Adam project is PINEAPPLE."),
    Document(page_content="adam-integrations runs GGUF and transformers models locally."),
    Document(page_content="Paris is the capital of France."),
]
retriever = InMemoryVectorStore.from_documents(documents, embedding=AdamEmbeddings()) \
    .as_retriever(search_kwargs={"k": 1})
prompt = ChatPromptTemplate.from_messages([
    ("system", "Answer using only this context:\n{context}"),
    ("human", "{question}"),
])
llm = ChatAdam(temperature=0.0, max_tokens=64)  # the default model for this machine
chain = (
    {"context": retriever | (lambda docs: "\n".join(d.page_content for d in docs)),
     "question": RunnablePassthrough()}
    | prompt | llm | StrOutputParser()
)
for piece in chain.stream("What is the secret code word of the Adam project?"):
    print(piece, end="", flush=True)
print()

"""A LangChain RAG chain on local models: AdamEmbeddings + InMemoryVectorStore + ChatAdam.
(``scaling_out_rag.py`` runs the same chain with its chat model on a serving engine.)"""

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from adam_integrations.langchain import AdamEmbeddings, ChatAdam

QUESTION = "What is the secret code word of the Adam project?"


def rag_chain(llm: BaseChatModel) -> Runnable:
    """Retrieve the closest document, answer from it with ``llm``."""
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
    return (
        {"context": retriever | (lambda docs: "\n".join(d.page_content for d in docs)),
         "question": RunnablePassthrough()}
        | prompt | llm | StrOutputParser()
    )


if __name__ == "__main__":
    chain = rag_chain(ChatAdam(temperature=0.0, max_tokens=64))  # this machine's default
    for piece in chain.stream(QUESTION):
        print(piece, end="", flush=True)
    print()
